//go:build !linux

package boltstore

// ReleaseMapped does nothing on this system (see the Linux version).
func (s *Store) ReleaseMapped() error { return nil }
