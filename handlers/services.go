package handlers

import (
	"fmt"
	"os"

	"github.com/costsync/costsync/shared/costcsv"
)

// LoadServices reads the FinOps toolkit's Services.csv at path, once at
// start-up, for the FOCUS service name and category of every record. An
// empty path means none: those fields stay empty.
func LoadServices(path string) (*costcsv.Services, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("services file: %w", err)
	}
	defer f.Close()
	sv, err := costcsv.LoadServices(f)
	if err != nil {
		return nil, fmt.Errorf("services file %s: %w", path, err)
	}
	return sv, nil
}
