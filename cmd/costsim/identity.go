package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// App Service's managed identity endpoint (api-version 2019-08-01), as
// azidentity's ManagedIdentityCredential calls it when IDENTITY_ENDPOINT and
// IDENTITY_HEADER are set.

const msiAPIVersion = "2019-08-01"

// tokenResponse is App Service's answer; expires_on is unix seconds as a string.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresOn   string `json:"expires_on"`
	Resource    string `json:"resource"`
	TokenType   string `json:"token_type"`
	ClientID    string `json:"client_id"`
}

// msiError is App Service's error body.
type msiError struct {
	StatusCode    int    `json:"statusCode"`
	Message       string `json:"message"`
	CorrelationID string `json:"correlationId"`
}

// claims are the JWT claims costsim puts in tokens and reads back.
type claims struct {
	Aud      string `json:"aud"`
	Iss      string `json:"iss"`
	Iat      int64  `json:"iat"`
	Nbf      int64  `json:"nbf"`
	Exp      int64  `json:"exp"`
	Appid    string `json:"appid"`
	Appidacr string `json:"appidacr"`
	Idp      string `json:"idp"`
	Idtyp    string `json:"idtyp"`
	Oid      string `json:"oid"`
	Sub      string `json:"sub"`
	Tid      string `json:"tid"`
	Uti      string `json:"uti"`
	Ver      string `json:"ver"`
	XmsMirid string `json:"xms_mirid,omitempty"`
}

func (s *sim) serveToken(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		writeJSON(w, status, msiError{StatusCode: status, Message: msg, CorrelationID: newGUID()})
	}
	if r.Method != http.MethodGet {
		fail(http.StatusMethodNotAllowed, "Only GET is supported.")
		return
	}
	got := r.Header.Get("X-IDENTITY-HEADER")
	want := s.cfg.identityHeader
	if got == "" || (want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1) {
		fail(http.StatusUnauthorized, "The X-IDENTITY-HEADER header is missing or does not match.")
		return
	}
	q := r.URL.Query()
	switch v := q.Get("api-version"); {
	case v == "":
		fail(http.StatusBadRequest, "The api-version query parameter is required.")
		return
	case v != msiAPIVersion:
		fail(http.StatusBadRequest, fmt.Sprintf("The api-version '%s' is not supported; use %s.", v, msiAPIVersion))
		return
	}
	resource := q.Get("resource")
	if resource == "" {
		fail(http.StatusBadRequest, "The resource query parameter is required.")
		return
	}
	clientID := q.Get("client_id")
	oid := ""
	switch {
	case clientID != "":
		oid = stableGUID(s.cfg.seed, "oid", strings.ToLower(clientID))
	case q.Get("object_id") != "" || q.Get("principal_id") != "":
		oid = strings.ToLower(q.Get("object_id") + q.Get("principal_id"))
		clientID = stableGUID(s.cfg.seed, "appid-for-oid", oid)
	case q.Get("mi_res_id") != "" || q.Get("msi_res_id") != "":
		res := strings.ToLower(q.Get("mi_res_id") + q.Get("msi_res_id"))
		clientID = stableGUID(s.cfg.seed, "appid-for-res", res)
		oid = stableGUID(s.cfg.seed, "oid", clientID)
	default:
		clientID = stableGUID(s.cfg.seed, "system-assigned")
		oid = stableGUID(s.cfg.seed, "oid", clientID)
	}
	now := s.now().UTC()
	exp := now.Add(time.Hour)
	mirid := q.Get("mi_res_id") + q.Get("msi_res_id")
	if mirid == "" {
		mirid = "/subscriptions/" + stableGUID(s.cfg.seed, "identity-subscription") +
			"/resourcegroups/costsim/providers/Microsoft.Web/sites/costsim"
	}
	c := claims{
		Aud: resource, Iss: "https://sts.windows.net/" + s.cfg.tenant + "/",
		Iat: now.Unix(), Nbf: now.Add(-5 * time.Minute).Unix(), Exp: exp.Unix(),
		Appid: clientID, Appidacr: "2", Idp: "https://sts.windows.net/" + s.cfg.tenant + "/", Idtyp: "app",
		Oid: oid, Sub: oid, Tid: s.cfg.tenant, Uti: newGUID(), Ver: "1.0", XmsMirid: mirid,
	}
	tok, err := s.mintJWT(c)
	if err != nil {
		fail(http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: tok, ExpiresOn: strconv.FormatInt(exp.Unix(), 10),
		Resource: resource, TokenType: "Bearer", ClientID: clientID,
	})
}

// mintJWT encodes c as header.payload.signature. The signature is an HMAC
// with the process secret: JWT-shaped, not verifiable by anyone else.
func (s *sim) mintJWT(c claims) (string, error) {
	header, err := json.Marshal(map[string]string{"typ": "JWT", "alg": "RS256", "kid": "costsim"})
	if err != nil {
		return "", fmt.Errorf("encode token header: %w", err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode token claims: %w", err)
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, s.secret)
	mac.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(mac.Sum(nil)), nil
}

// armAudiences are the token audiences ARM accepts.
var armAudiences = map[string]bool{
	"https://management.azure.com":         true,
	"https://management.azure.com/":        true,
	"https://management.core.windows.net":  true,
	"https://management.core.windows.net/": true,
}

// checkBearer validates the ARM bearer token of r: JWT-shaped, ARM audience,
// inside nbf..exp. The signature is not checked. It returns ARM's message for
// a refused token, or "".
func (s *sim) checkBearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if h == "" {
		return "Authentication failed. The 'Authorization' header is missing."
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "Authentication failed. The 'Authorization' header is not in the 'Bearer <token>' format."
	}
	c, err := parseJWT(strings.TrimSpace(tok))
	if err != nil {
		return fmt.Sprintf("The access token is invalid: %v.", err)
	}
	if !armAudiences[c.Aud] {
		return fmt.Sprintf("The access token has been obtained for wrong audience or resource '%s'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'.", c.Aud)
	}
	now := s.now().Unix()
	if c.Exp != 0 && now >= c.Exp {
		return fmt.Sprintf("The access token expiry UTC time '%s' is earlier than current UTC time '%s'.",
			time.Unix(c.Exp, 0).UTC().Format(time.RFC1123), time.Unix(now, 0).UTC().Format(time.RFC1123))
	}
	if c.Nbf != 0 && now < c.Nbf {
		return fmt.Sprintf("The access token is not yet valid (nbf '%s').", time.Unix(c.Nbf, 0).UTC().Format(time.RFC1123))
	}
	return ""
}

// parseJWT decodes the claims of a JWT without verifying it.
func parseJWT(tok string) (claims, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return claims{}, errors.New("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return claims{}, fmt.Errorf("decode payload: %w", err)
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return claims{}, fmt.Errorf("decode claims: %w", err)
	}
	return c, nil
}
