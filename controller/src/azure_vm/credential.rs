//! Microsoft Entra tokens for ARM by the client-credentials grant, with either a client
//! secret or a GitHub Actions OIDC token as the client assertion (workload identity
//! federation: no stored secret).
//!
//! The GitHub token lives only minutes while a run can last an hour, so a fresh one is
//! requested every time a new Azure token is needed (the final deallocation must still
//! authenticate); Azure tokens are cached until shortly before they expire.

use std::sync::{Arc, Mutex};

use azure_core::auth::{AccessToken, Secret, TokenCredential};
use azure_core::{HttpClient, Method, Request, Url};
use time::OffsetDateTime;

/// How long before its expiry a cached token is replaced.
const REFRESH_MARGIN: time::Duration = time::Duration::minutes(2);

/// The assertion grant: a secret, or a GitHub OIDC token fetched per Azure token.
#[derive(Debug, Clone)]
pub enum Assertion {
    Secret(String),
    GithubOidc {
        request_url: String,
        request_token: String,
    },
}

#[derive(Debug)]
pub struct EntraCredential {
    http: Arc<dyn HttpClient>,
    authority: Url,
    tenant_id: String,
    client_id: String,
    assertion: Assertion,
    cache: Mutex<Option<AccessToken>>,
}

impl EntraCredential {
    pub fn new(
        http: Arc<dyn HttpClient>,
        authority: Url,
        tenant_id: String,
        client_id: String,
        assertion: Assertion,
    ) -> Self {
        Self {
            http,
            authority,
            tenant_id,
            client_id,
            assertion,
            cache: Mutex::new(None),
        }
    }

    async fn github_token(
        &self,
        request_url: &str,
        request_token: &str,
    ) -> azure_core::Result<String> {
        let mut url = Url::parse(request_url)
            .map_err(|e| other(format!("ACTIONS_ID_TOKEN_REQUEST_URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("audience", "api://AzureADTokenExchange");
        let mut req = Request::new(url, Method::Get);
        req.insert_header("authorization", format!("Bearer {request_token}"));
        let body = self.send(&req, "GitHub's OIDC endpoint").await?;
        let json: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| other(format!("GitHub's OIDC answer: {e}")))?;
        json["value"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| other("GitHub's OIDC answer has no \"value\"".into()))
    }

    async fn send(&self, req: &Request, what: &str) -> azure_core::Result<Vec<u8>> {
        let rsp = self.http.execute_request(req).await?;
        let status = rsp.status();
        let body = rsp.into_body().collect().await?.to_vec();
        if !status.is_success() {
            return Err(other(format!(
                "{what} answered HTTP {}: {}",
                status as u16,
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            )));
        }
        Ok(body)
    }
}

fn other(message: String) -> azure_core::Error {
    azure_core::Error::message(azure_core::error::ErrorKind::Credential, message)
}

#[async_trait::async_trait]
impl TokenCredential for EntraCredential {
    async fn get_token(&self, scopes: &[&str]) -> azure_core::Result<AccessToken> {
        if let Some(t) = self.cache.lock().expect("token cache").as_ref()
            && t.expires_on - REFRESH_MARGIN > OffsetDateTime::now_utc()
        {
            return Ok(t.clone());
        }
        // The assertion is fetched first: the form serializer must not live across an await.
        let assertion = match &self.assertion {
            Assertion::Secret(_) => None,
            Assertion::GithubOidc {
                request_url,
                request_token,
            } => Some(self.github_token(request_url, request_token).await?),
        };
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials")
                .append_pair("client_id", &self.client_id)
                .append_pair("scope", &scopes.join(" "));
            match (&self.assertion, &assertion) {
                (Assertion::Secret(secret), _) => {
                    form.append_pair("client_secret", secret);
                }
                (Assertion::GithubOidc { .. }, Some(jwt)) => {
                    form.append_pair(
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    )
                    .append_pair("client_assertion", jwt);
                }
                (Assertion::GithubOidc { .. }, None) => unreachable!("fetched above"),
            }
            form.finish()
        };
        let url = self
            .authority
            .join(&format!("{}/oauth2/v2.0/token", self.tenant_id))
            .map_err(|e| other(format!("authority URL: {e}")))?;
        let mut req = Request::new(url, Method::Post);
        req.insert_header("content-type", "application/x-www-form-urlencoded");
        req.set_body(form.into_bytes());
        let body = self.send(&req, "Microsoft Entra").await?;
        let json: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| other(format!("token answer: {e}")))?;
        let token = json["access_token"]
            .as_str()
            .ok_or_else(|| other("token answer has no access_token".into()))?;
        let expires_in = json["expires_in"].as_i64().unwrap_or(300);
        let token = AccessToken::new(
            Secret::new(token.to_owned()),
            OffsetDateTime::now_utc() + time::Duration::seconds(expires_in),
        );
        *self.cache.lock().expect("token cache") = Some(token.clone());
        Ok(token)
    }

    async fn clear_cache(&self) -> azure_core::Result<()> {
        *self.cache.lock().expect("token cache") = None;
        Ok(())
    }
}

/// A credential whose every token request has a deadline. azure_identity runs `az` for
/// `--azure-credential cli` with none, so an `az` that hangs (a login prompt, a proxy that
/// swallows its request) would hold the run, and the final deallocation, for ever; past the
/// deadline the request fails as a credential error (not retried) naming it. The `az` left
/// running is not killed (azure_identity owns it); it exits with the controller's session.
#[derive(Debug)]
pub struct Bounded {
    inner: Arc<dyn TokenCredential>,
    limit: std::time::Duration,
}

impl Bounded {
    pub fn new(inner: Arc<dyn TokenCredential>, limit: std::time::Duration) -> Self {
        Self { inner, limit }
    }
}

#[async_trait::async_trait]
impl TokenCredential for Bounded {
    async fn get_token(&self, scopes: &[&str]) -> azure_core::Result<AccessToken> {
        match tokio::time::timeout(self.limit, self.inner.get_token(scopes)).await {
            Ok(token) => token,
            Err(_) => Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                || format!("no Azure token within {} s", self.limit.as_secs_f64()),
            )),
        }
    }

    async fn clear_cache(&self) -> azure_core::Result<()> {
        self.inner.clear_cache().await
    }
}

#[cfg(test)]
mod bounded_tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A credential source that never answers (an `az` that hangs).
    #[derive(Debug)]
    struct Silent;

    #[async_trait::async_trait]
    impl TokenCredential for Silent {
        async fn get_token(&self, _: &[&str]) -> azure_core::Result<AccessToken> {
            std::future::pending().await
        }
        async fn clear_cache(&self) -> azure_core::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_token_source_that_never_answers_fails_at_the_deadline() {
        let bounded = Bounded::new(Arc::new(Silent), Duration::from_millis(200));
        let start = Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(30), bounded.get_token(&["s"]))
            .await
            .expect("the bounded credential answered");
        let err = outcome.unwrap_err();
        assert_eq!(*err.kind(), azure_core::error::ErrorKind::Credential);
        assert!(
            err.to_string().contains("no Azure token within 0.2 s"),
            "{err}"
        );
        assert!(start.elapsed() >= Duration::from_millis(200));
    }
}
