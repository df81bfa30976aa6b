package store_test

import (
	"testing"

	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/store/storetest"
)

func TestMemorySources(t *testing.T) {
	storetest.RunSources(t, func(t *testing.T) storetest.SourceStore { return store.NewMemory() })
}

func TestCosmosSources(t *testing.T) {
	env := storetest.StartEnv(t)
	storetest.RunSources(t, func(t *testing.T) storetest.SourceStore { return storetest.NewCosmos(t, env, nil) })
}
