package store

import (
	"errors"
	"net/http"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

func TestMapError(t *testing.T) {
	cases := []struct {
		status int
		want   error
	}{
		{http.StatusNotFound, ErrNotFound},
		{http.StatusConflict, ErrConflict},
		{http.StatusPreconditionFailed, ErrPrecondition},
		{http.StatusTooManyRequests, nil},
		{http.StatusInternalServerError, nil},
	}
	for _, c := range cases {
		orig := &azcore.ResponseError{StatusCode: c.status, ErrorCode: http.StatusText(c.status)}
		got := mapError(orig)
		var re *azcore.ResponseError
		if !errors.As(got, &re) || re.StatusCode != c.status {
			t.Errorf("mapError(%d) lost the original error: %v", c.status, got)
		}
		for _, sentinel := range []error{ErrNotFound, ErrConflict, ErrPrecondition} {
			if errors.Is(got, sentinel) != (sentinel == c.want) {
				t.Errorf("mapError(%d): errors.Is(%v) = %v", c.status, sentinel, !(sentinel == c.want))
			}
		}
	}
	if mapError(nil) != nil {
		t.Error("mapError(nil) is not nil")
	}
}
