// Package boltstore keeps everything newsdigest knows in one bbolt file:
// lists, subscribers, articles, feeds, editions with their delivery ledger,
// and the suppression list. The daemon and the CLI share the same file;
// bbolt lets one process hold it at a time (Open fails with ErrLocked after
// Options.Timeout while another holds it).
//
// # Layout
//
// Every value is JSON. Top-level buckets:
//
//	meta            "schema" -> decimal schema version (SchemaVersion)
//	lists           list name -> subscribers.List
//	subscribers     normalized email -> subscribers.Subscriber
//	subscriber_ids  subscriber ID -> normalized email
//	articles        article ID -> digest.Article
//	article_guids   GUID -> article ID
//	article_links   CanonicalLink(link) -> article ID
//	feeds           feed ID -> digest.Feed
//	editions        edition ID -> digest.Edition
//	deliveries      edition ID (bucket) -> normalized email -> digest.Delivery
//	pending         edition ID (bucket) -> normalized email -> "" (queued only)
//	edition_counts  edition ID -> delivery counters, cached status (counts.go)
//	suppressions    normalized email -> Suppression
//
// The pending buckets mirror the queued records of the ledger, so that
// finding the next recipients of an edition, and knowing that none is left,
// costs nothing however many have been sent already.
//
// # Transactions
//
// Each method is one bbolt transaction, and so one fsync for writes: batch
// methods (UpsertSubscribers, UpsertArticles, QueueDeliveries,
// RecordDeliveries) exist so that callers pay one fsync per batch, and either
// the whole batch is written or none of it. No method returns memory owned by
// bbolt, and none keeps a read transaction open after it returns: senders page
// through Subscribers and PendingDeliveries instead of holding one while they
// send.
package boltstore
