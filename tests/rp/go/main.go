// A relying party written with go-oidc (github.com/coreos/go-oidc) and golang.org/x/oauth2,
// what Go services sign in with. Usage: go-oidc-rp ISSUER CLIENT_ID REDIRECT_URI
// (SSL_CERT_FILE: the issuer's CA.)
//
// Prints one JSON line {"authorize"}; the test signs a user in and writes the callback URL
// back on stdin. Then: the code exchange with PKCE, the ID token verified by go-oidc (JWKS
// signature, iss, aud, expiry; nonce and at_hash checked here as its docs say), userinfo, a
// refresh through the token source. Prints one JSON line of what it got.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func main() {
	issuer, clientID, redirect := os.Args[1], os.Args[2], os.Args[3]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := map[string]any{}
	emit := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Println(string(b))
	}
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		emit(map[string]any{"error": err.Error()})
		os.Exit(1)
	}
	config := oauth2.Config{
		ClientID:    clientID,
		Endpoint:    provider.Endpoint(),
		RedirectURL: redirect,
		Scopes:      []string{oidc.ScopeOpenID, "email", oidc.ScopeOfflineAccess},
	}
	verifier := oauth2.GenerateVerifier()
	state, nonce := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	emit(map[string]any{"authorize": config.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))})

	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	callback, err := url.Parse(line[:len(line)-1])
	if err != nil || callback.Query().Get("state") != state {
		emit(map[string]any{"error": "the callback does not carry our state"})
		os.Exit(1)
	}
	fail := func(step string, err error) {
		out["error"] = step + ": " + err.Error()
		emit(out)
		os.Exit(0)
	}
	token, err := config.Exchange(ctx, callback.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		fail("exchange", err)
	}
	raw, ok := token.Extra("id_token").(string)
	if !ok {
		fail("exchange", fmt.Errorf("no id_token"))
	}
	idToken, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, raw)
	if err != nil {
		fail("verify", err)
	}
	if idToken.Nonce != nonce {
		fail("verify", fmt.Errorf("nonce %q is not ours", idToken.Nonce))
	}
	if err := idToken.VerifyAccessToken(token.AccessToken); err != nil {
		fail("at_hash", err)
	}
	out["sub"] = idToken.Subject
	userinfo, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(token))
	if err != nil {
		fail("userinfo", err)
	}
	out["userinfo_sub"] = userinfo.Subject
	out["userinfo_email"] = userinfo.Email
	out["userinfo_email_verified"] = userinfo.EmailVerified
	// An expired token makes the token source refresh.
	token.Expiry = time.Now().Add(-time.Minute)
	refreshed, err := config.TokenSource(ctx, token).Token()
	if err != nil {
		fail("refresh", err)
	}
	out["refreshed"] = refreshed.AccessToken != token.AccessToken
	out["refresh_rotated"] = refreshed.RefreshToken != token.RefreshToken
	emit(out)
}
