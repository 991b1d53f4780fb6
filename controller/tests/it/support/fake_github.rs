//! An in-process fake of the GitHub REST API on 127.0.0.1, in its wire format: issue
//! comments (list with `per_page`/`page` and a `Link` header, create 201, update),
//! open pull requests by `head`, and `compare/{base}...{head}`. Errors carry GitHub's
//! `{"message", "documentation_url", "status"}` body. Scripted faults are served first;
//! a fault may apply the request before failing (a lost response). Every request is
//! recorded.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::http::{Reply, Request};

pub const OWNER: &str = "octo";
pub const REPO: &str = "textkit";
pub const TOKEN: &str = "ghs_test_token";
/// The repository's numeric id, as GitHub's pagination links use it.
const REPO_ID: &str = "1296269";

#[derive(Debug, Clone)]
pub struct StoredComment {
    pub id: u64,
    pub issue: u64,
    pub body: String,
    pub login: String,
}

#[derive(Debug, Clone)]
pub struct Pull {
    pub number: u64,
    pub branch: String,
    pub open: bool,
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub method: &'static str,
    pub path_contains: &'static str,
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub message: &'static str,
    /// Carry the request out, then answer with the fault (the response was lost).
    pub apply_first: bool,
    /// Something else that happens on the server as the fault is served.
    pub effect: Option<fn(&mut State)>,
}

impl Fault {
    /// Answer the next `method` request whose path contains `path_contains` with `status`.
    pub fn new(
        method: &'static str,
        path_contains: &'static str,
        status: u16,
        message: &'static str,
    ) -> Self {
        Fault {
            method,
            path_contains,
            status,
            headers: vec![],
            message,
            apply_first: false,
            effect: None,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Carry the request out first: the answer is lost, not the action.
    pub fn applied(mut self) -> Self {
        self.apply_first = true;
        self
    }

    pub fn with_effect(mut self, effect: fn(&mut State)) -> Self {
        self.effect = Some(effect);
        self
    }
}

#[derive(Debug, Default)]
pub struct State {
    pub comments: Vec<StoredComment>,
    pub pulls: Vec<Pull>,
    /// What `compare` answers: (merge base, base tip) for any pair of refs.
    pub compare: Option<(String, String)>,
    pub faults: VecDeque<Fault>,
    pub requests: Vec<Request>,
    next_id: u64,
}

#[derive(Clone)]
pub struct FakeGithub {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
}

impl FakeGithub {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            next_id: 1_000,
            ..State::default()
        }));
        let shared = state.clone();
        super::http::serve(listener, move |req| route(&shared, req, addr));
        FakeGithub { addr, state }
    }

    /// A fake in its own runtime thread, for tests that run the `benchvm` binary.
    pub fn start_in_thread() -> Self {
        let state = Arc::new(Mutex::new(State {
            next_id: 1_000,
            ..State::default()
        }));
        let shared = state.clone();
        let own = Arc::new(std::sync::OnceLock::new());
        let known = own.clone();
        let addr = super::http::serve_in_thread(move |req| {
            route(
                &shared,
                req,
                *known.get().expect("address known before requests"),
            )
        });
        own.set(addr).expect("set once");
        FakeGithub { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn add_pull(&self, number: u64, branch: &str) {
        self.state.lock().unwrap().pulls.push(Pull {
            number,
            branch: branch.into(),
            open: true,
        });
    }

    /// `n` comments by other people on `issue`.
    pub fn add_comments(&self, issue: u64, n: usize, body: impl Fn(usize) -> String) {
        self.add_comments_by(issue, n, "someone", body);
    }

    /// `n` comments by `login` on `issue`.
    pub fn add_comments_by(
        &self,
        issue: u64,
        n: usize,
        login: &str,
        body: impl Fn(usize) -> String,
    ) {
        let mut s = self.state.lock().unwrap();
        for i in 0..n {
            s.next_id += 1;
            let id = s.next_id;
            s.comments.push(StoredComment {
                id,
                issue,
                body: body(i),
                login: login.into(),
            });
        }
    }

    pub fn fault(&self, f: Fault) {
        self.state.lock().unwrap().faults.push_back(f);
    }

    pub fn comments_on(&self, issue: u64) -> Vec<StoredComment> {
        let s = self.state.lock().unwrap();
        s.comments
            .iter()
            .filter(|c| c.issue == issue)
            .cloned()
            .collect()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// `METHOD path` of every request, in order.
    pub fn calls(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

fn error(status: u16, message: &str) -> Reply {
    let body = json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": status.to_string(),
    });
    (status, vec![], body.to_string())
}

fn comment_json(c: &StoredComment, addr: SocketAddr) -> Value {
    json!({
        "url": format!("http://{addr}/repos/{OWNER}/{REPO}/issues/comments/{}", c.id),
        "html_url": format!("https://github.com/{OWNER}/{REPO}/pull/{}#issuecomment-{}", c.issue, c.id),
        "issue_url": format!("http://{addr}/repos/{OWNER}/{REPO}/issues/{}", c.issue),
        "id": c.id,
        "node_id": format!("IC_kwDO{}", c.id),
        "user": {
            "login": c.login,
            "id": 41898282,
            "node_id": "MDM6Qm90NDE4OTgyODI=",
            "type": "Bot",
            "site_admin": false
        },
        "created_at": "2026-11-22T10:00:00Z",
        "updated_at": "2026-11-22T10:00:00Z",
        "author_association": "NONE",
        "body": c.body,
        "performed_via_github_app": null
    })
}

fn query(path: &str, key: &str) -> Option<String> {
    let (_, q) = path.split_once('?')?;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| {
            url::form_urlencoded::parse(format!("v={v}").as_bytes())
                .next()
                .unwrap()
                .1
                .into_owned()
        })
    })
}

fn route(state: &Mutex<State>, req: Request, addr: SocketAddr) -> Reply {
    let mut s = state.lock().unwrap();
    s.requests.push(req.clone());
    if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
        return error(401, "Bad credentials");
    }
    let fault = s
        .faults
        .iter()
        .position(|f| f.method == req.method && req.path.contains(f.path_contains))
        .map(|i| s.faults.remove(i).unwrap());
    if let Some(effect) = fault.as_ref().and_then(|f| f.effect) {
        effect(&mut s);
    }
    if let Some(f) = &fault
        && !f.apply_first
    {
        let (status, _, body) = error(f.status, f.message);
        return (status, f.headers.clone(), body);
    }
    let reply = handle(&mut s, &req, addr);
    match fault {
        Some(f) => {
            let (status, _, body) = error(f.status, f.message);
            (status, f.headers, body)
        }
        None => reply,
    }
}

fn handle(s: &mut State, req: &Request, addr: SocketAddr) -> Reply {
    let path = req.path.split('?').next().unwrap_or("");
    if path == "/user" {
        // What GitHub answers a job's GITHUB_TOKEN (an installation token).
        return error(403, "Resource not accessible by integration");
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // The repository by name, or by id as in GitHub's `Link` headers.
    let rest = match parts.as_slice() {
        ["repos", OWNER, REPO, rest @ ..] | ["repositories", REPO_ID, rest @ ..] => rest,
        _ => return error(404, "Not Found"),
    };
    match (req.method.as_str(), rest) {
        ("GET", ["issues", n, "comments"]) => {
            let Ok(n) = n.parse::<u64>() else {
                return error(404, "Not Found");
            };
            if !s.pulls.iter().any(|p| p.number == n) {
                return error(404, "Not Found");
            }
            let per_page: usize = query(&req.path, "per_page")
                .and_then(|v| v.parse().ok())
                .unwrap_or(30)
                .min(100);
            let page: usize = query(&req.path, "page")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1)
                .max(1);
            let all: Vec<&StoredComment> = s.comments.iter().filter(|c| c.issue == n).collect();
            let pages = all.len().div_ceil(per_page).max(1);
            let items: Vec<Value> = all
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|c| comment_json(c, addr))
                .collect();
            let mut headers = vec![];
            if page < pages {
                // GitHub's links name the repository by id.
                let link = |p: usize| {
                    format!(
                        "<http://{addr}/repositories/{REPO_ID}/issues/{n}/comments?per_page={per_page}&page={p}>"
                    )
                };
                headers.push((
                    "link",
                    format!(
                        "{}; rel=\"next\", {}; rel=\"last\"",
                        link(page + 1),
                        link(pages)
                    ),
                ));
            }
            (200, headers, Value::Array(items).to_string())
        }
        ("POST", ["issues", n, "comments"]) => {
            let Ok(n) = n.parse::<u64>() else {
                return error(404, "Not Found");
            };
            if !s.pulls.iter().any(|p| p.number == n) {
                return error(404, "Not Found");
            }
            let Some(body) = serde_json::from_str::<Value>(&req.body)
                .ok()
                .and_then(|v| v["body"].as_str().map(str::to_owned))
            else {
                return error(422, "Invalid request.\n\n\"body\" wasn't supplied.");
            };
            if body.chars().count() > 65_536 {
                return error(
                    422,
                    "Validation Failed: body is too long (maximum is 65536 characters)",
                );
            }
            s.next_id += 1;
            let c = StoredComment {
                id: s.next_id,
                issue: n,
                body,
                login: "github-actions[bot]".into(),
            };
            s.comments.push(c.clone());
            (
                201,
                vec![(
                    "location",
                    format!(
                        "http://{addr}/repos/{OWNER}/{REPO}/issues/comments/{}",
                        c.id
                    ),
                )],
                comment_json(&c, addr).to_string(),
            )
        }
        ("PATCH", ["issues", "comments", id]) => {
            let body = serde_json::from_str::<Value>(&req.body)
                .ok()
                .and_then(|v| v["body"].as_str().map(str::to_owned));
            let Some(c) = id
                .parse::<u64>()
                .ok()
                .and_then(|id| s.comments.iter_mut().find(|c| c.id == id))
            else {
                return error(404, "Not Found");
            };
            let Some(body) = body else {
                return error(422, "Invalid request.");
            };
            if body.chars().count() > 65_536 {
                return error(
                    422,
                    "Validation Failed: body is too long (maximum is 65536 characters)",
                );
            }
            c.body = body;
            (200, vec![], comment_json(c, addr).to_string())
        }
        ("GET", ["pulls"]) => {
            let head = query(&req.path, "head").unwrap_or_default();
            let open = query(&req.path, "state").as_deref() == Some("open");
            let items: Vec<Value> = s
                .pulls
                .iter()
                .filter(|p| head.is_empty() || head == format!("{OWNER}:{}", p.branch))
                .filter(|p| !open || p.open)
                .map(|p| {
                    json!({
                        "number": p.number,
                        "state": if p.open { "open" } else { "closed" },
                        "head": {"ref": p.branch, "label": format!("{OWNER}:{}", p.branch)},
                        "html_url": format!("https://github.com/{OWNER}/{REPO}/pull/{}", p.number)
                    })
                })
                .collect();
            (200, vec![], Value::Array(items).to_string())
        }
        ("GET", ["compare", spec]) => {
            let Some((merge_base, base_tip)) = s.compare.clone() else {
                return error(404, "Not Found");
            };
            if !spec.contains("...") {
                return error(404, "Not Found");
            }
            let body = json!({
                "status": "ahead",
                "ahead_by": 1,
                "behind_by": 0,
                "base_commit": {"sha": base_tip},
                "merge_base_commit": {"sha": merge_base},
                "commits": [],
                "files": []
            });
            (200, vec![], body.to_string())
        }
        _ => error(404, "Not Found"),
    }
}
