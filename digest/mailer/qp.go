package mailer

// appendQP appends to dst the quoted-printable encoding of src exactly as
// mime/quotedprintable's Writer (not Binary) produces it for one Write of
// src followed by Close: CRLF line ends, soft breaks at 76 octets,
// trailing spaces and tabs encoded. go-mail encodes each body part that
// way; this does the same work without the Writer's per-line flushes and
// without copying through intermediate buffers. The identity is checked
// by FuzzAppendQP against the standard library.
func appendQP[S ~string | ~[]byte](dst []byte, src S) []byte {
	return qpAppend(dst, src, false)
}

// appendQPNoDot is appendQP for output that needs no dot-stuffing: a '.'
// that would start an encoded line is written "=2E" (RFC 2045 lets any
// octet be encoded; decoded, nothing changes), so no line it writes
// starts with '.'. The output must start a line (dst empty or ending with
// a line break), as Template's pieces do. Where appendQP's output has no
// line starting with '.', the two are byte for byte the same.
func appendQPNoDot[S ~string | ~[]byte](dst []byte, src S) []byte {
	return qpAppend(dst, src, true)
}

// qpAppend is appendQP, or appendQPNoDot when noDot is set.
func qpAppend[S ~string | ~[]byte](dst []byte, src S, noDot bool) []byte {
	const lineMax = 76
	// i is the length of the current output line (without its CRLF);
	// cr is the Writer's "previous input byte was CR" flag, which only
	// plain bytes and a skipped LF clear.
	i, cr := 0, false
	for p := 0; p < len(src); {
		b := src[p]
		switch qpClass[b] {
		case qpPlain:
			// A run of literal bytes, cut at the soft-break point. Spaces
			// and tabs are literal too: one that ends up last on its line
			// is encoded when the line ends (qpLastSpace), as the Writer
			// does.
			end := p + 1
			for end < len(src) && qpClass[src[end]] == qpPlain {
				end++
			}
			for p < end {
				if i == lineMax-1 {
					dst = append(dst, '=', '\r', '\n')
					i = 0
				}
				if i == 0 && noDot && src[p] == '.' {
					dst, i = qpEncode(dst, i, '.')
					p++
					continue
				}
				n := min(end-p, lineMax-1-i)
				dst = append(dst, src[p:p+n]...)
				i += n
				p += n
			}
			cr = false
			continue
		case qpNewline:
			if cr && b == '\n' {
				cr = false
				break
			}
			if b == '\r' {
				cr = true
			}
			dst, i = qpLastSpace(dst, i)
			dst = append(dst, '\r', '\n')
			i = 0
		default:
			dst, i = qpEncode(dst, i, b)
		}
		p++
	}
	dst, _ = qpLastSpace(dst, i)
	return dst
}

// qpEncode appends =XX for b, breaking the line first if it would not fit.
func qpEncode(dst []byte, i int, b byte) ([]byte, int) {
	const lineMax = 76
	if lineMax-1-i < 3 {
		dst = append(dst, '=', '\r', '\n')
		i = 0
	}
	const hex = "0123456789ABCDEF"
	dst = append(dst, '=', hex[b>>4], hex[b&0x0f])
	return dst, i + 3
}

// qpLastSpace encodes the line's last byte if it is a space or a tab, as
// the Writer does before a line break and at Close.
func qpLastSpace(dst []byte, i int) ([]byte, int) {
	if i == 0 {
		return dst, i
	}
	b := dst[len(dst)-1]
	if b != ' ' && b != '\t' {
		return dst, i
	}
	dst = dst[:len(dst)-1]
	return qpEncode(dst, i-1, b)
}

const (
	qpEncoded byte = iota
	qpPlain        // '!'..'~' except '=', space and tab
	qpNewline      // '\r' and '\n'
)

var qpClass = func() (t [256]byte) {
	for b := '!'; b <= '~'; b++ {
		t[b] = qpPlain
	}
	t['='] = qpEncoded
	t[' '], t['\t'] = qpPlain, qpPlain
	t['\r'], t['\n'] = qpNewline, qpNewline
	return t
}()
