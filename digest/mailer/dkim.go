package mailer

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// DKIMHeaders are the header fields every signature covers. A field listed
// but absent from a message is signed as absent, so nobody can add it on
// the way.
var DKIMHeaders = []string{
	"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
	"Reply-To", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "Feedback-ID",
}

// DKIM signs messages for one domain and selector with relaxed/relaxed
// canonicalization and SHA-256 (go-msgauth). It is safe for concurrent
// use: each Sign call has its own signer state.
type DKIM struct {
	opts dkim.SignOptions
}

// NewDKIM returns a signer for domain and selector with key (an
// *rsa.PrivateKey of at least 1024 bits or an ed25519.PrivateKey).
func NewDKIM(domain, selector string, key crypto.Signer) (*DKIM, error) {
	switch {
	case domain == "" || strings.ContainsFunc(domain, isSpaceOrControl) || strings.ContainsAny(domain, ";="):
		return nil, fmt.Errorf("dkim.domain: %q is not a domain name", domain)
	case selector == "" || strings.ContainsFunc(selector, isSpaceOrControl) || strings.ContainsAny(selector, ";="):
		return nil, fmt.Errorf("dkim.selector: %q is not a selector", selector)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k == nil || k.N.BitLen() < 1024 {
			return nil, errors.New("dkim.key_file: the RSA key is missing or shorter than 1024 bits (2048 advised)")
		}
	case ed25519.PrivateKey:
	default:
		return nil, fmt.Errorf("dkim.key_file: %T keys are not supported: use RSA or Ed25519", key)
	}
	return &DKIM{opts: dkim.SignOptions{
		Domain: domain, Selector: selector, Signer: key, Hash: crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             DKIMHeaders,
	}}, nil
}

// LoadDKIM reads a PEM private key (PKCS#1 or PKCS#8 RSA, PKCS#8 Ed25519)
// from keyFile and returns a signer for domain and selector.
func LoadDKIM(domain, selector, keyFile string) (*DKIM, error) {
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("dkim.key_file: %w", err)
	}
	key, err := ParsePrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("dkim.key_file: %s: %w", keyFile, err)
	}
	return NewDKIM(domain, selector, key)
}

// ParsePrivateKey decodes the first PEM private key in raw.
func ParsePrivateKey(raw []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, raw = pem.Decode(raw)
		if block == nil {
			return nil, errors.New("no PEM private key found")
		}
		switch block.Type {
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(block.Bytes)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, err
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("%T keys are not supported", k)
			}
			return s, nil
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the key is encrypted: store it without a passphrase, readable only by newsdigest")
		}
	}
}

// Domain is the signing domain (d=).
func (d *DKIM) Domain() string { return d.opts.Domain }

// Sign returns the DKIM-Signature header field (with its CRLF) for msg,
// the whole message exactly as it will be sent. Put it before msg.
func (d *DKIM) Sign(msg []byte) ([]byte, error) {
	opts := d.opts // a copy per call: go-msgauth may fill in defaults
	s, err := dkim.NewSigner(&opts)
	if err != nil {
		return nil, fmt.Errorf("mailer: dkim: %w", err)
	}
	if _, err := s.Write(msg); err != nil {
		s.Close()
		return nil, fmt.Errorf("mailer: dkim: %w", err)
	}
	if err := s.Close(); err != nil {
		return nil, fmt.Errorf("mailer: dkim: %w", err)
	}
	sig := s.Signature()
	if !strings.HasSuffix(sig, "\r\n") {
		sig += "\r\n"
	}
	return []byte(sig), nil
}

// PublicKeyRecord returns the DNS TXT record to publish at
// selector._domainkey.domain for the signer's key.
func (d *DKIM) PublicKeyRecord() (string, error) {
	var b bytes.Buffer
	var der []byte
	var err error
	switch k := d.opts.Signer.Public().(type) {
	case *rsa.PublicKey:
		b.WriteString("v=DKIM1; k=rsa; p=")
		der, err = x509.MarshalPKIXPublicKey(k)
	case ed25519.PublicKey:
		b.WriteString("v=DKIM1; k=ed25519; p=")
		der = k
	}
	if err != nil {
		return "", err
	}
	b.WriteString(base64.StdEncoding.EncodeToString(der))
	return b.String(), nil
}
