# A manual check of upstream_oidc.mjs (issue 15 WIP): sign carol in through the dev pages, read
# the ID token, refresh, remove carol upstream, refresh again (invalid_grant). Start the upstream
# first: node upstream_oidc.mjs 18700 kube-oidc s3cret http://127.0.0.1:18701/callback KEYS
import requests, re, base64, hashlib, json, urllib.parse as up, sys
iss="http://127.0.0.1:18700"
J=lambda u: up.urljoin(iss+"/", u)
s=requests.Session()
ver="v"*50; ch=base64.urlsafe_b64encode(hashlib.sha256(ver.encode()).digest()).rstrip(b"=").decode()
r=s.get(iss+"/auth", params=dict(client_id="kube-oidc", response_type="code", scope="openid email profile groups offline_access", redirect_uri="http://127.0.0.1:18701/callback", state="st", nonce="n", code_challenge=ch, code_challenge_method="S256", prompt="consent"), allow_redirects=False)
loc=r.headers["location"]
for i in range(10):
    if loc.startswith("http://127.0.0.1:18701"): break
    r=s.get(J(loc), allow_redirects=False)
    if r.status_code==200 and 'action=' in r.text:
        form=re.search(r'action="([^"]+)"', r.text).group(1)
        data={"prompt":"login","login":"carol","password":"x"} if 'name="login"' in r.text else {"prompt":"consent"}
        r=s.post(J(form), data=data, allow_redirects=False)
    loc=r.headers.get("location")
    if not loc: print(r.status_code, r.text[:300]); sys.exit(1)
print("callback:", loc)
code=dict(up.parse_qsl(up.urlparse(loc).query))["code"]
t=requests.post(iss+"/token", auth=("kube-oidc","s3cret"), data=dict(grant_type="authorization_code", code=code, redirect_uri="http://127.0.0.1:18701/callback", code_verifier=ver)).json()
claims=json.loads(base64.urlsafe_b64decode(t["id_token"].split(".")[1]+"=="))
print({k:claims.get(k) for k in ("sub","email","email_verified","groups","name")}, "refresh_token" in t)
r=requests.post(iss+"/token", auth=("kube-oidc","s3cret"), data=dict(grant_type="refresh_token", refresh_token=t["refresh_token"])); print("refresh:", r.status_code)
requests.post(iss+"/admin/remove/carol")
r=requests.post(iss+"/token", auth=("kube-oidc","s3cret"), data=dict(grant_type="refresh_token", refresh_token=r.json()["refresh_token"])); print("after removal:", r.status_code, r.text[:120])
