// Package templates holds the files embedded in the newsdigest binary: the
// email templates used by the renderer (email/) and the sample data used by
// the demo command (demo/) and the subscriber web pages (web/). It has no
// logic.
//
// email/ holds:
//
//	digest.html.tmpl   html/template, the HTML part (CSS is inlined by premailer)
//	digest.txt.tmpl    text/template, the plain-text part
//	subject.txt.tmpl   text/template, the subject line
//	style.css          the stylesheet placed in the HTML <style> block
//	confirm.*.tmpl     the double opt-in email (HTML, text, subject)
//	welcome.*.tmpl     the email sent once a subscription is confirmed
//
// web/ holds the pages of the daemon (html/template, each page defines
// "content" inside layout.html.tmpl), their style.css and web.js, and
// timezones.txt, the IANA zones offered on the preferences page.
//
// Any of these can be replaced by a file of the same name in an override
// directory (see digest/render).
package templates

import "embed"

// FS is the embedded file tree: "email/*", "demo/*" and "web/*".
//
//go:embed email/* demo/* web/*
var FS embed.FS
