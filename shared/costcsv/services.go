package costcsv

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Services maps a ConsumedService and ARM resource type to the FOCUS service
// name and category, from the finops-toolkit open data file Services.csv
// (columns ConsumedService, ResourceType, ServiceName, ServiceCategory, ...).
// It is read-only once loaded and safe for concurrent use.
type Services struct {
	exact      map[[2]string]service // (consumed service, resource type)
	byType     map[string]service    // resource type, when every row agrees
	byConsumed map[string]service    // consumed service, when every row agrees
}

type service struct{ name, category string }

// conflict marks a fallback entry whose rows disagree: it answers nothing.
var conflict = service{}

// LoadServices reads a Services.csv. Names are matched case-insensitively.
func LoadServices(r io.Reader) (*Services, error) {
	cr := csv.NewReader(skipBOM(r))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read services header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	need := []string{"consumedservice", "resourcetype", "servicename", "servicecategory"}
	for _, n := range need {
		if _, ok := col[n]; !ok {
			return nil, fmt.Errorf("read services: missing column %s", n)
		}
	}
	s := &Services{
		exact:      map[[2]string]service{},
		byType:     map[string]service{},
		byConsumed: map[string]service{},
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read services: %w", err)
		}
		get := func(n string) string {
			if i := col[n]; i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		cs, rt := strings.ToLower(get("consumedservice")), strings.ToLower(get("resourcetype"))
		sv := service{name: get("servicename"), category: get("servicecategory")}
		if sv.name == "" {
			continue
		}
		s.exact[[2]string{cs, rt}] = sv
		if rt != "" {
			agree(s.byType, rt, sv)
		}
		if cs != "" {
			agree(s.byConsumed, cs, sv)
		}
	}
	return s, nil
}

func agree(m map[string]service, k string, sv service) {
	if old, ok := m[k]; ok && old != sv {
		m[k] = conflict
		return
	}
	m[k] = sv
}

// Lookup returns the service name and category for a consumed service
// ("Microsoft.Compute") and ARM resource type
// ("microsoft.compute/virtualmachines"), case-insensitively. It tries, in
// order: both; both with the resource type's parent types
// ("a/b/c" -> "a/b"); the resource type alone with an empty consumed service;
// the resource type alone, when every row for it names the same service; the
// consumed service alone, likewise. ok is false when none answers.
func (s *Services) Lookup(consumedService, resourceType string) (name, category string, ok bool) {
	if s == nil {
		return "", "", false
	}
	cs, rt := strings.ToLower(consumedService), strings.ToLower(resourceType)
	for t := rt; ; {
		if sv, ok := s.exact[[2]string{cs, t}]; ok {
			return sv.name, sv.category, true
		}
		i := strings.LastIndexByte(t, '/')
		if i < 0 || strings.IndexByte(t[:i], '/') < 0 {
			break
		}
		t = t[:i]
	}
	if rt != "" {
		if sv, ok := s.exact[[2]string{"", rt}]; ok {
			return sv.name, sv.category, true
		}
		if sv, ok := s.byType[rt]; ok && sv != conflict {
			return sv.name, sv.category, true
		}
	}
	if cs != "" {
		if sv, ok := s.byConsumed[cs]; ok && sv != conflict {
			return sv.name, sv.category, true
		}
	}
	return "", "", false
}
