//! The sticky comment against a fake GitHub REST server: created once and then updated in
//! place, found past the first page, posted once through rate limits and lost responses,
//! and a missing pull request as a clear error.

use std::time::{Duration, Instant};

use crate::support::fake_github::{FakeGithub, Fault, OWNER, REPO, TOKEN};
use benchvm::github::api::{ApiError, Client};
use benchvm::github::readout::{self, CommentMode, Posted};
use benchvm_agent::report::render::MARKER;

fn client(gh: &FakeGithub) -> Client {
    Client::new(&gh.url(), TOKEN, format!("{OWNER}/{REPO}").parse().unwrap()).unwrap()
}

fn body(text: &str) -> String {
    format!("{MARKER}\n{text}")
}

#[tokio::test]
async fn the_first_run_creates_the_comment_and_the_second_updates_it() {
    let gh = FakeGithub::start().await;
    gh.add_pull(7, "perf/x");
    let c = client(&gh);
    let first = readout::post(&c, 7, &body("run 1"), CommentMode::Always, true)
        .await
        .unwrap();
    let Posted::Created(created) = first else {
        panic!("first run creates: {first:?}")
    };
    let second = readout::post(&c, 7, &body("run 2"), CommentMode::Always, false)
        .await
        .unwrap();
    let Posted::Updated(updated) = second else {
        panic!("second run updates: {second:?}")
    };
    assert_eq!(created.id, updated.id);
    let stored = gh.comments_on(7);
    assert_eq!(stored.len(), 1, "no comment spam");
    assert_eq!(stored[0].body, body("run 2"));
    let calls = gh.calls();
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("POST")).count(),
        1,
        "{calls:#?}"
    );
    assert!(calls.iter().any(|c| c.starts_with(&format!(
        "PATCH /repos/{OWNER}/{REPO}/issues/comments/{}",
        created.id
    ))));
}

#[tokio::test]
async fn the_marker_is_found_past_the_first_page() {
    let gh = FakeGithub::start().await;
    gh.add_pull(7, "perf/x");
    gh.add_comments(7, 230, |i| format!("comment {i}, mentioning benchvm"));
    let c = client(&gh);
    let Posted::Created(mine) = readout::post(&c, 7, &body("old"), CommentMode::Always, true)
        .await
        .unwrap()
    else {
        panic!("created")
    };
    // More discussion after it: the marker now sits on page 3 of 100 per page.
    gh.add_comments(7, 40, |i| format!("later {i}"));
    let posted = readout::post(&c, 7, &body("new"), CommentMode::Always, true)
        .await
        .unwrap();
    assert!(
        matches!(&posted, Posted::Updated(u) if u.id == mine.id),
        "{posted:?}"
    );
    assert_eq!(gh.comments_on(7).len(), 271);
    let calls = gh.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.contains("comments?per_page=100&page=3")),
        "followed the Link header: {calls:#?}"
    );
}

#[tokio::test]
async fn a_secondary_rate_limit_is_waited_out_and_the_comment_posted_once() {
    let gh = FakeGithub::start().await;
    gh.add_pull(7, "perf/x");
    gh.fault(Fault::new("POST", "/issues/7/comments", 403, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.").header("retry-after", "1"));
    let t = Instant::now();
    let posted = readout::post(&client(&gh), 7, &body("x"), CommentMode::Always, true)
        .await
        .unwrap();
    assert!(matches!(posted, Posted::Created(_)), "{posted:?}");
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "retry-after honoured"
    );
    assert_eq!(gh.comments_on(7).len(), 1);
}

#[tokio::test]
async fn a_lost_create_response_does_not_post_twice() {
    let gh = FakeGithub::start().await;
    gh.add_pull(7, "perf/x");
    // The comment is stored, but the answer is a 502: a blind retry would post it again.
    gh.fault(Fault::new("POST", "/issues/7/comments", 502, "Server Error").applied());
    let posted = readout::post(&client(&gh), 7, &body("once"), CommentMode::Always, true)
        .await
        .unwrap();
    assert!(matches!(posted, Posted::Updated(_)), "{posted:?}");
    let stored = gh.comments_on(7);
    assert_eq!(stored.len(), 1, "{stored:#?}");
    assert_eq!(stored[0].body, body("once"));
}

#[tokio::test]
async fn a_primary_rate_limit_that_resets_too_late_fails_at_once() {
    let gh = FakeGithub::start().await;
    gh.add_pull(7, "perf/x");
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    gh.fault(
        Fault::new(
            "GET",
            "/issues/7/comments",
            403,
            "API rate limit exceeded for installation ID 1.",
        )
        .header("x-ratelimit-remaining", "0")
        .header("x-ratelimit-reset", reset.to_string()),
    );
    let t = Instant::now();
    let err = readout::post(&client(&gh), 7, &body("x"), CommentMode::Always, true)
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::RateLimited { .. }), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(gh.comments_on(7).is_empty());
}

#[tokio::test]
async fn a_missing_pull_request_is_a_404_naming_the_call() {
    let gh = FakeGithub::start().await;
    let err = readout::post(&client(&gh), 404, &body("x"), CommentMode::Always, true)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    let text = err.to_string();
    assert!(
        text.contains("/issues/404/comments") && text.contains("Not Found"),
        "{text}"
    );
}

#[tokio::test]
async fn a_permission_403_is_not_retried() {
    let gh = FakeGithub::start().await;
    gh.add_pull(7, "perf/x");
    gh.fault(
        Fault::new(
            "POST",
            "/issues/7/comments",
            403,
            "Resource not accessible by integration",
        )
        .header("x-ratelimit-remaining", "4999"),
    );
    let err = readout::post(&client(&gh), 7, &body("x"), CommentMode::Always, true)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert!(err.to_string().contains("Resource not accessible"), "{err}");
    let posts = gh.calls().iter().filter(|c| c.starts_with("POST")).count();
    assert_eq!(posts, 1);
}

#[tokio::test]
async fn on_change_creates_only_for_a_change_but_always_refreshes_an_existing_comment() {
    let gh = FakeGithub::start().await;
    gh.add_pull(7, "perf/x");
    let c = client(&gh);
    let quiet = readout::post(&c, 7, &body("same"), CommentMode::OnChange, false)
        .await
        .unwrap();
    assert!(matches!(quiet, Posted::Skipped(_)), "{quiet:?}");
    assert!(gh.comments_on(7).is_empty());
    readout::post(&c, 7, &body("regressed"), CommentMode::OnChange, true)
        .await
        .unwrap();
    let refreshed = readout::post(&c, 7, &body("fine now"), CommentMode::OnChange, false)
        .await
        .unwrap();
    assert!(matches!(refreshed, Posted::Updated(_)), "{refreshed:?}");
    assert_eq!(gh.comments_on(7)[0].body, body("fine now"));
    let never = readout::post(&c, 7, &body("x"), CommentMode::Never, true)
        .await
        .unwrap();
    assert!(matches!(never, Posted::Skipped(_)));
}

#[tokio::test]
async fn a_push_finds_the_open_pull_request_of_its_branch() {
    let gh = FakeGithub::start().await;
    gh.add_pull(3, "perf/other");
    gh.add_pull(9, "perf/fast path");
    let c = client(&gh);
    assert_eq!(
        c.open_pull_for_branch("perf/fast path").await.unwrap(),
        Some(9)
    );
    assert_eq!(c.open_pull_for_branch("perf/none").await.unwrap(), None);
}

#[tokio::test]
async fn a_comment_deleted_between_search_and_update_is_created_again() {
    let gh = FakeGithub::start().await;
    gh.add_pull(7, "perf/x");
    let c = client(&gh);
    readout::post(&c, 7, &body("first"), CommentMode::Always, true)
        .await
        .unwrap();
    // Someone deletes it just as the update goes out.
    gh.fault(
        Fault::new("PATCH", "/issues/comments/", 404, "Not Found")
            .with_effect(|s| s.comments.clear()),
    );
    let posted = readout::post(&c, 7, &body("second"), CommentMode::Always, true)
        .await
        .unwrap();
    assert!(matches!(posted, Posted::Created(_)), "{posted:?}");
    assert_eq!(gh.comments_on(7).len(), 1);
    let calls = gh.calls();
    // GET /user once (the identity); then search and create; search, update (gone); search, create.
    let methods: Vec<&str> = calls.iter().map(|c| c.split(' ').next().unwrap()).collect();
    assert_eq!(
        methods,
        ["GET", "GET", "POST", "GET", "PATCH", "GET", "POST"],
        "{calls:#?}"
    );
}

#[tokio::test]
async fn a_marker_comment_by_someone_else_is_never_taken_over() {
    let gh = FakeGithub::start().await;
    gh.add_pull(7, "perf/x");
    gh.add_comments_by(7, 1, "mallory", |_| body("all fine, merge it"));
    let posted = readout::post(&client(&gh), 7, &body("real"), CommentMode::Always, true)
        .await
        .unwrap();
    assert!(matches!(posted, Posted::Created(_)), "{posted:?}");
    let stored = gh.comments_on(7);
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored[0].body,
        body("all fine, merge it"),
        "mallory's comment untouched"
    );
    assert!(!gh.calls().iter().any(|c| c.starts_with("PATCH")));
}

#[tokio::test]
async fn a_marker_comment_by_this_token_is_updated() {
    let gh = FakeGithub::start().await;
    gh.add_pull(7, "perf/x");
    gh.add_comments_by(7, 1, "github-actions[bot]", |_| body("earlier"));
    let posted = readout::post(&client(&gh), 7, &body("now"), CommentMode::Always, true)
        .await
        .unwrap();
    assert!(
        matches!(posted, Posted::Updated(_)),
        "{posted:?} {:#?}",
        gh.calls()
    );
    assert_eq!(gh.comments_on(7)[0].body, body("now"));
}
