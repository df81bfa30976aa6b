package main

import "net/http"

func (s *sim) serveExport(w http.ResponseWriter, r *http.Request, rawScope, rest string) {
	serveNotFound(w, r)
}
