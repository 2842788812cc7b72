// Package delivery builds editions and sends them: it selects the stories
// of a list's edition, records the edition and one ledger row per
// recipient in the store, renders the edition once, personalizes it per
// recipient and hands each message to a transport (SMTP or .eml files),
// recording every outcome in the ledger. Messages are composed from one
// compiled mailer.Template per rendered variant (Engine.Message), each
// with a Message-ID fixed for its edition and subscriber.
//
// # Crash safety
//
// The ledger is written by group commit: one writer commits whatever
// outcomes are waiting as soon as its previous commit is done, so a busy
// send puts many records in each fsync, and a worker does not begin its
// next SMTP transaction until the outcome of its previous message is
// durable (it composes the next message meanwhile). At any moment at most
// Engine.Workers messages have been accepted by the server without being
// recorded as sent. After a kill -9, a power cut or a crash, Deliver on
// the same edition (newsdigest editions resume) sends every delivery still
// queued: nobody is skipped, and at most those in-flight messages, one per
// worker, go out twice. A stop through the context loses nothing and
// duplicates nothing: messages in flight finish and are recorded.
//
// # Politeness and failures
//
// A shared token bucket (Engine.Limiter) paces all workers; an optional
// per-recipient-domain cap (Engine.DomainConcurrency) bounds messages in
// flight to one domain. 4xx replies and dropped connections are retried
// with exponential back-off and jitter; 5xx replies are final, and 5.1.x
// ones add the address to the store's suppression list. The edition
// pauses (status paused, with the reason) when no transport can be
// opened, when the context is cancelled, or when Engine.PauseErrors of
// the last PauseWindow attempts failed; queued deliveries stay queued.
//
// The store is an interface (the bbolt store implements it); rendering and
// message composition use packages render and mailer.
package delivery
