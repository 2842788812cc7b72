// Package feed turns syndication feeds (RSS 2.0, Atom, JSON Feed, parsed by
// gofeed) and CMS export files (JSON, CSV) into clean digest.Articles.
//
// Everything read here is treated as hostile. Every article that leaves the
// package has an absolute http(s) Link, a plain-text Title with no markup and
// no control characters (so no CR or LF), SummaryHTML sanitized by the
// bluemonday policy returned by Policy, a plain-text SummaryText, and an
// ImageURL that is either empty or absolute https. Items that cannot meet
// these rules are not returned; they are reported (ItemError, RowError) with
// the reason, and the rest are kept.
//
// The package stores nothing: Fetcher.Fetch, Parse, ReadArticlesJSON and
// ReadArticlesCSV return articles and the caller stores them (and sets
// Article.Source).
package feed
