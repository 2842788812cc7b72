//go:build linux

package boltstore

import (
	"fmt"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// ReleaseMapped tells the kernel that this process no longer needs the
// pages of the database file it has read through bbolt's memory map
// (madvise MADV_DONTNEED). They stay in the page cache and are mapped
// again, without reading the disk, when next used; nothing changes for
// any reader or writer. A long send reads each subscriber's record once:
// releasing the pages it has passed keeps the process's resident memory
// to what it is using, instead of growing with the file.
func (s *Store) ReleaseMapped() error {
	// bbolt remaps the file only when no read transaction is open, so
	// the mapping cannot move while this one is.
	return s.db.View(s.releaseIn)
}

// releaseIn is ReleaseMapped inside a transaction that is open (of any
// kind: the mapping cannot move while it is).
func (s *Store) releaseIn(tx *bolt.Tx) error {
	addr, size := s.db.Info().Data, uintptr(tx.Size())
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, addr, size, syscall.MADV_DONTNEED); errno != 0 {
		return fmt.Errorf("boltstore: release mapped pages: %w", errno)
	}
	return nil
}
