//! The few GitHub REST calls the readout needs, through octocrab with a configurable base
//! URI. octocrab's own retry is off: it repeats a request at once, which can post a comment
//! twice. Here reads are retried with a wait that honours `retry-after` and
//! `x-ratelimit-reset`, and a comment is created only after looking for the marker again
//! (see [`Client::upsert_comment`]).

use std::time::Duration;

use http_body_util::combinators::BoxBody;
use octocrab::Octocrab;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Requests per page when listing comments (GitHub's maximum).
const PER_PAGE: u32 = 100;
/// Attempts per call before a retryable failure becomes an error.
const ATTEMPTS: u32 = 6;
/// The longest single wait for a rate limit; a later reset is reported as an error.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Wait after a secondary rate limit that names no time (GitHub: "at least one minute").
const SECONDARY_WAIT: Duration = Duration::from_secs(60);

/// Why a GitHub call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("GitHub API {method} {path}: {status} {message}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        message: String,
    },
    #[error(
        "GitHub API {method} {path}: rate limited for {wait_s} s more, longer than benchvm waits"
    )]
    RateLimited {
        method: &'static str,
        path: String,
        wait_s: u64,
    },
    #[error("GitHub API {method} {path}: {detail}")]
    Transport {
        method: &'static str,
        path: String,
        detail: String,
    },
    #[error("GitHub API {method} {path}: unexpected response: {detail}")]
    Decode {
        method: &'static str,
        path: String,
        detail: String,
    },
    #[error("GitHub API: {0}")]
    Setup(String),
}

impl ApiError {
    /// The HTTP status, when GitHub answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A comment as the readout needs it (GitHub's issue-comment object has more).
#[derive(Debug, Clone, Deserialize)]
pub struct Comment {
    pub id: u64,
    pub html_url: String,
    #[serde(default)]
    pub body: Option<String>,
    pub user: Author,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Author {
    pub login: String,
}

/// Who a job's `GITHUB_TOKEN` comments as; `GET /user` is not open to it.
pub const ACTIONS_BOT: &str = "github-actions[bot]";

/// Two refs as GitHub compares them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compared {
    pub merge_base: String,
    /// The commit `base` names now.
    pub base_tip: String,
}

/// The owner/name of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoId {
    pub owner: String,
    pub name: String,
}

impl std::str::FromStr for RepoId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('/') {
            Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => Ok(RepoId {
                owner: o.into(),
                name: n.into(),
            }),
            _ => Err(format!("{s:?} is not owner/name")),
        }
    }
}

impl std::fmt::Display for RepoId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// How a failed attempt should go on.
enum Next {
    Retry(Duration),
    Fail(ApiError),
}

/// A repository's REST API.
#[derive(Debug)]
pub struct Client {
    octo: Octocrab,
    repo: RepoId,
    login: tokio::sync::OnceCell<String>,
}

impl Client {
    /// `api_url` is `$GITHUB_API_URL` (`https://api.github.com`, or a GHES or test server).
    pub fn new(api_url: &str, token: &str, repo: RepoId) -> Result<Self, ApiError> {
        let octo = Octocrab::builder()
            .base_uri(api_url)
            .map_err(|e| ApiError::Setup(format!("base URI {api_url:?}: {e}")))?
            .personal_token(token.to_owned())
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
            .set_connect_timeout(Some(Duration::from_secs(20)))
            .set_read_timeout(Some(Duration::from_secs(60)))
            .build()
            .map_err(|e| ApiError::Setup(e.to_string()))?;
        Ok(Self {
            octo,
            repo,
            login: tokio::sync::OnceCell::new(),
        })
    }

    pub fn repo(&self) -> &RepoId {
        &self.repo
    }

    /// What `GET /repos/{o}/{r}/compare/{base}...{head}` says of two refs.
    pub async fn compare(&self, base: &str, head: &str) -> Result<Compared, ApiError> {
        #[derive(Deserialize)]
        struct Raw {
            merge_base_commit: Sha,
            base_commit: Sha,
        }
        #[derive(Deserialize)]
        struct Sha {
            sha: String,
        }
        let path = format!(
            "/repos/{}/compare/{}...{}",
            self.repo,
            encode_path(base),
            encode_path(head)
        );
        let c: Raw = self.get_json(&path).await?;
        Ok(Compared {
            merge_base: c.merge_base_commit.sha,
            base_tip: c.base_commit.sha,
        })
    }

    /// The merge base of two commits.
    pub async fn merge_base(&self, base: &str, head: &str) -> Result<String, ApiError> {
        Ok(self.compare(base, head).await?.merge_base)
    }

    /// The number of the open pull request whose head is `branch` of this repository.
    pub async fn open_pull_for_branch(&self, branch: &str) -> Result<Option<u64>, ApiError> {
        #[derive(Deserialize)]
        struct Pull {
            number: u64,
        }
        let path = format!(
            "/repos/{}/pulls?state=open&head={}:{}&per_page={PER_PAGE}",
            self.repo,
            self.repo.owner,
            encode(branch)
        );
        let pulls: Vec<Pull> = self.get_json(&path).await?;
        Ok(pulls.first().map(|p| p.number))
    }

    /// The login the token comments as: `GET /user` for a personal or app user token;
    /// a job's `GITHUB_TOKEN` may not read it and comments as `github-actions[bot]`.
    pub async fn login(&self) -> Result<String, ApiError> {
        #[derive(Deserialize)]
        struct User {
            login: String,
        }
        self.login
            .get_or_try_init(|| async {
                match self.get_json::<User>("/user").await {
                    Ok(u) => Ok(u.login),
                    Err(e) if matches!(e.status(), Some(401 | 403 | 404)) => {
                        Ok(ACTIONS_BOT.to_owned())
                    }
                    Err(e) => Err(e),
                }
            })
            .await
            .cloned()
    }

    /// The first comment on issue or PR `number` that carries `marker` and was written by
    /// this token's login (anyone can post the marker), following the `Link: rel="next"`
    /// pages.
    pub async fn find_comment(
        &self,
        number: u64,
        marker: &str,
    ) -> Result<Option<Comment>, ApiError> {
        let me = self.login().await?;
        let mut path = Some(format!(
            "/repos/{}/issues/{number}/comments?per_page={PER_PAGE}",
            self.repo
        ));
        while let Some(p) = path.take() {
            let (text, link) = self.send_get(&p).await?;
            let page: Vec<Comment> = decode("GET", &p, &text)?;
            if let Some(c) = page.into_iter().find(|c| {
                c.user.login == me && c.body.as_deref().is_some_and(|b| b.starts_with(marker))
            }) {
                return Ok(Some(c));
            }
            path = link.as_deref().and_then(next_link);
        }
        Ok(None)
    }

    /// Updates the comment that carries `marker` on `number`, or creates it: never two.
    ///
    /// A create that fails in a retryable way may still have been stored, so before each
    /// new attempt the comments are searched for the marker again.
    pub async fn upsert_comment(
        &self,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<(Comment, bool), ApiError> {
        let payload = serde_json::json!({ "body": body });
        let mut attempt = 0;
        loop {
            attempt += 1;
            let existing = self.find_comment(number, marker).await?;
            let (method, path, created) = match &existing {
                Some(c) => (
                    "PATCH",
                    format!("/repos/{}/issues/comments/{}", self.repo, c.id),
                    false,
                ),
                None => (
                    "POST",
                    format!("/repos/{}/issues/{number}/comments", self.repo),
                    true,
                ),
            };
            let result = if created {
                self.octo._post(path.as_str(), Some(&payload)).await
            } else {
                self.octo._patch(path.as_str(), Some(&payload)).await
            };
            match self.classify(method, &path, result, attempt).await {
                Ok(text) => return Ok((decode(method, &path, &text)?, created)),
                Err(Next::Retry(wait)) => tokio::time::sleep(wait).await,
                // Deleted since it was found: look again, then create it.
                Err(Next::Fail(e)) if !created && e.status() == Some(404) && attempt < ATTEMPTS => {
                }
                Err(Next::Fail(e)) => return Err(e),
            }
        }
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let (text, _) = self.send_get(path).await?;
        decode("GET", path, &text)
    }

    /// A GET with retries; returns the body and the `Link` header.
    async fn send_get(&self, path: &str) -> Result<(String, Option<String>), ApiError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.octo._get(path).await;
            let link = result
                .as_ref()
                .ok()
                .and_then(|r| r.headers().get("link"))
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match self.classify("GET", path, result, attempt).await {
                Ok(text) => return Ok((text, link)),
                Err(Next::Retry(wait)) => tokio::time::sleep(wait).await,
                Err(Next::Fail(e)) => return Err(e),
            }
        }
    }

    /// The body of a 2xx answer, or what to do about the failure.
    async fn classify(
        &self,
        method: &'static str,
        path: &str,
        result: octocrab::Result<http::Response<BoxBody<bytes::Bytes, octocrab::Error>>>,
        attempt: u32,
    ) -> Result<String, Next> {
        let last = attempt >= ATTEMPTS;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                let err = ApiError::Transport {
                    method,
                    path: path.to_owned(),
                    detail: e.to_string(),
                };
                return Err(if last {
                    Next::Fail(err)
                } else {
                    Next::Retry(backoff(attempt))
                });
            }
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (retry_after, remaining, reset) = (
            header("retry-after"),
            header("x-ratelimit-remaining"),
            header("x-ratelimit-reset"),
        );
        let text = self.octo.body_to_string(response).await.map_err(|e| {
            Next::Fail(ApiError::Transport {
                method,
                path: path.to_owned(),
                detail: e.to_string(),
            })
        })?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| text.chars().take(200).collect());
        let err = || ApiError::Status {
            method,
            path: path.to_owned(),
            status,
            message: message.clone(),
        };
        let wait = rate_limit_wait(
            status,
            retry_after.as_deref(),
            remaining.as_deref(),
            reset.as_deref(),
            &message,
            unix_now(),
        );
        let wait = match (wait, status) {
            (Some(w), _) => w,
            (None, 500..=599) => backoff(attempt),
            (None, _) => return Err(Next::Fail(err())),
        };
        if wait > MAX_WAIT {
            return Err(Next::Fail(ApiError::RateLimited {
                method,
                path: path.to_owned(),
                wait_s: wait.as_secs(),
            }));
        }
        if last {
            return Err(Next::Fail(err()));
        }
        eprintln!(
            "benchvm: GitHub answered {status} to {method} {path} ({message}); retrying in {} s",
            wait.as_secs()
        );
        Err(Next::Retry(wait))
    }
}

/// How long a 403/429 asks to wait, per GitHub's rate-limit documentation: `retry-after`
/// first, then `x-ratelimit-reset` when no requests remain, then a minute for a secondary
/// limit that names no time. `None`: not a rate limit.
fn rate_limit_wait(
    status: u16,
    retry_after: Option<&str>,
    remaining: Option<&str>,
    reset: Option<&str>,
    message: &str,
    now: u64,
) -> Option<Duration> {
    if status != 403 && status != 429 {
        return retry_after
            .and_then(|s| s.trim().parse().ok())
            .filter(|_| status >= 500)
            .map(Duration::from_secs);
    }
    if let Some(secs) = retry_after.and_then(|s| s.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs));
    }
    if remaining.map(str::trim) == Some("0")
        && let Some(at) = reset.and_then(|s| s.trim().parse::<u64>().ok())
    {
        return Some(Duration::from_secs(at.saturating_sub(now).max(1)));
    }
    let lower = message.to_ascii_lowercase();
    if status == 429 || lower.contains("secondary rate limit") || lower.contains("abuse") {
        return Some(SECONDARY_WAIT);
    }
    None
}

/// 1, 2, 4, 8 … seconds.
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1 << attempt.saturating_sub(1).min(5))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn decode<T: DeserializeOwned>(
    method: &'static str,
    path: &str,
    text: &str,
) -> Result<T, ApiError> {
    serde_json::from_str(text).map_err(|e| ApiError::Decode {
        method,
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

/// The `rel="next"` target of a `Link` header, as a path and query.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        if !params.split(';').any(|p| p.trim() == "rel=\"next\"") {
            return None;
        }
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        let parsed = url::Url::parse(url).ok()?;
        Some(match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_owned(),
        })
    })
}

/// A ref in a URL path: `/` stays (GitHub takes branch names with slashes as they are).
fn encode_path(r: &str) -> String {
    r.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// Percent-encodes a branch name for a query value.
fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_follow_the_rate_limit_headers() {
        let now = 1_000;
        let w = |status, ra, rem, reset, msg| rate_limit_wait(status, ra, rem, reset, msg, now);
        assert_eq!(
            w(403, Some("7"), None, None, ""),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            w(403, None, Some("0"), Some("1030"), ""),
            Some(Duration::from_secs(30))
        );
        // A reset already past still waits a moment.
        assert_eq!(
            w(429, None, Some("0"), Some("900"), ""),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            w(
                403,
                None,
                None,
                None,
                "You have exceeded a secondary rate limit"
            ),
            Some(SECONDARY_WAIT)
        );
        assert_eq!(w(429, None, None, None, ""), Some(SECONDARY_WAIT));
        // A plain 403 is a permission problem: not retried.
        assert_eq!(
            w(
                403,
                None,
                Some("4999"),
                Some("1030"),
                "Resource not accessible by integration"
            ),
            None
        );
        assert_eq!(w(404, Some("5"), None, None, "Not Found"), None);
        assert_eq!(
            w(503, Some("5"), None, None, ""),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        let link = r#"<https://api.github.com/repositories/1/issues/7/comments?per_page=100&page=2>; rel="next", <https://api.github.com/repositories/1/issues/7/comments?per_page=100&page=3>; rel="last""#;
        assert_eq!(
            next_link(link).as_deref(),
            Some("/repositories/1/issues/7/comments?per_page=100&page=2")
        );
        let last = r#"<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=1>; rel="first""#;
        assert_eq!(next_link(last), None);
    }

    #[test]
    fn repo_ids_are_owner_slash_name() {
        let r: RepoId = "octo/hello".parse().unwrap();
        assert_eq!((r.owner.as_str(), r.name.as_str()), ("octo", "hello"));
        assert!("octo".parse::<RepoId>().is_err());
        assert!("a/b/c".parse::<RepoId>().is_err());
        assert!("/b".parse::<RepoId>().is_err());
    }
}
