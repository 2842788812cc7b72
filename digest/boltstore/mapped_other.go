//go:build !linux

package boltstore

import bolt "go.etcd.io/bbolt"

// ReleaseMapped does nothing on this system (see the Linux version).
func (s *Store) ReleaseMapped() error { return nil }

func (s *Store) releaseIn(*bolt.Tx) error { return nil }
