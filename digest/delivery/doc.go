// Package delivery builds editions and sends them: it selects the stories
// of a list's edition, records the edition and one ledger row per
// recipient in the store, renders the edition once, personalizes it per
// recipient and hands each message to a transport (SMTP or .eml files),
// recording the outcome in the ledger in batches so that a stopped send
// resumes where it was.
//
// The store is an interface (the bbolt store implements it); rendering and
// message composition use packages render and mailer.
package delivery
