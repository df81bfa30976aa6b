package store_test

import (
	"testing"

	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return store.NewMemory()
	})
}
