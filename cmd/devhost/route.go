package main

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// route is an HTTP trigger's route template, compiled.
type route struct {
	fn          *function
	template    string
	re          *regexp.Regexp
	params      []routeParam
	methods     []string // upper case; empty means all
	literalSegs int
	catchAll    bool
}

type routeParam struct {
	name       string
	constraint string
	optional   bool
}

var (
	routeToken = regexp.MustCompile(`\{([^{}]+)\}`)
	paramName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// parseRoute compiles a template such as "runs/{id}", "files/{*path}",
// "items/{id:int}" or "coverage/{scope?}". Literals match case-insensitively.
func parseRoute(template string) (*route, error) {
	t := strings.Trim(template, "/")
	r := &route{template: t}
	var re strings.Builder
	re.WriteString("(?i)^")
	segs := strings.Split(t, "/")
	if t == "" {
		segs = nil
	}
	seen := map[string]bool{}
	for i, seg := range segs {
		ms := routeToken.FindAllStringSubmatchIndex(seg, -1)
		if len(ms) == 0 {
			r.literalSegs++
			re.WriteString("/" + regexp.QuoteMeta(seg))
			continue
		}
		whole := len(ms) == 1 && ms[0][0] == 0 && ms[0][1] == len(seg)
		var segRe strings.Builder
		last := 0
		optionalSeg := false
		for _, m := range ms {
			segRe.WriteString(regexp.QuoteMeta(seg[last:m[0]]))
			spec := seg[m[2]:m[3]]
			p := routeParam{}
			catchAll := strings.HasPrefix(spec, "*")
			spec = strings.TrimLeft(spec, "*")
			if strings.HasSuffix(spec, "?") {
				p.optional = true
				spec = strings.TrimSuffix(spec, "?")
			}
			spec, p.constraint, _ = strings.Cut(spec, ":")
			if j := strings.Index(spec, "="); j >= 0 {
				return nil, fmt.Errorf("route %q: default values are not supported by devhost", template)
			}
			p.name = spec
			if !paramName.MatchString(p.name) || seen[strings.ToLower(p.name)] {
				return nil, fmt.Errorf("route %q: bad or repeated parameter {%s}", template, seg[m[2]:m[3]])
			}
			seen[strings.ToLower(p.name)] = true
			switch {
			case catchAll:
				if i != len(segs)-1 || !whole {
					return nil, fmt.Errorf("route %q: a catch-all parameter must be the whole last segment", template)
				}
				r.catchAll = true
				segRe.WriteString("(.*)")
			case p.optional:
				if i != len(segs)-1 || !whole {
					return nil, fmt.Errorf("route %q: an optional parameter must be the whole last segment", template)
				}
				optionalSeg = true
				segRe.WriteString("([^/]+)")
			default:
				segRe.WriteString("([^/]+)")
			}
			r.params = append(r.params, p)
			last = m[1]
		}
		segRe.WriteString(regexp.QuoteMeta(seg[last:]))
		switch {
		case r.catchAll || optionalSeg:
			re.WriteString("(?:/" + segRe.String() + ")?")
		default:
			re.WriteString("/" + segRe.String())
		}
	}
	re.WriteString("/?$")
	var err error
	if r.re, err = regexp.Compile(re.String()); err != nil {
		return nil, fmt.Errorf("route %q: %w", template, err)
	}
	return r, nil
}

// match returns the route parameters of path (relative to the route prefix,
// with a leading slash), or false.
func (r *route) match(path string) (map[string]string, bool) {
	m := r.re.FindStringSubmatch(path)
	if m == nil {
		return nil, false
	}
	params := map[string]string{}
	for i, p := range r.params {
		v := m[i+1]
		if v == "" && (p.optional || r.catchAll) {
			continue
		}
		if !constraintOK(p.constraint, v) {
			return nil, false
		}
		params[p.name] = v
	}
	return params, true
}

var guidRe = regexp.MustCompile(`^[{(]?[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}[})]?$`)

// constraintOK checks the common ASP.NET route constraints; others pass.
func constraintOK(c, v string) bool {
	switch strings.ToLower(c) {
	case "int":
		_, err := strconv.ParseInt(v, 10, 32)
		return err == nil
	case "long":
		_, err := strconv.ParseInt(v, 10, 64)
		return err == nil
	case "bool":
		_, err := strconv.ParseBool(v)
		return err == nil && (strings.EqualFold(v, "true") || strings.EqualFold(v, "false"))
	case "guid":
		return guidRe.MatchString(v)
	case "alpha":
		for _, r := range v {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
		return v != ""
	}
	return true
}

// sortRoutes orders routes so that the most specific matches first:
// more literal segments, then no catch-all, then fewer parameters.
func sortRoutes(rs []*route) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.catchAll != b.catchAll {
			return !a.catchAll
		}
		if a.literalSegs != b.literalSegs {
			return a.literalSegs > b.literalSegs
		}
		return len(a.params) < len(b.params)
	})
}
