//! The Azure VM client against an in-process fake of ARM and Microsoft Entra.

use std::time::{Duration, Instant};

use crate::support::fake_arm::{FakeArm, Fault};
use benchvm::azure_vm::{AzureError, AzureOptions, AzureVm, CredentialConfig, PowerState, VmRef};

fn vm(fake: &FakeArm, name: &str, credential: CredentialConfig) -> AzureVm {
    let url = url::Url::parse(&fake.url()).unwrap();
    let options = AzureOptions {
        arm_endpoint: url.clone(),
        authority_host: url,
        poll_interval: Duration::from_millis(50),
        max_retries: 4,
        ..AzureOptions::default()
    };
    let vm = VmRef {
        subscription: "sub-1".into(),
        resource_group: "bench-rg".into(),
        name: name.into(),
    };
    AzureVm::new(vm, credential, options).unwrap()
}

fn secret() -> CredentialConfig {
    CredentialConfig::ClientSecret {
        tenant_id: "tenant-1".into(),
        client_id: "client-1".into(),
        secret: "s3cret".into(),
    }
}

#[tokio::test]
async fn start_from_deallocated_polls_the_instance_view_until_running() {
    let fake = FakeArm::start("bench-vm", "deallocated").await;
    let vm = vm(&fake, "bench-vm", secret());
    let already = vm.start(Duration::from_secs(20)).await.unwrap();
    assert!(!already);
    assert_eq!(vm.power_state().await.unwrap(), PowerState::Running);
    let reqs = fake.requests();
    let start = reqs
        .iter()
        .position(|r| {
            r.method == "POST"
                && r.path
                    .contains("/virtualMachines/bench-vm/start?api-version=2024-07-01")
        })
        .expect("POST start");
    assert!(
        reqs[start]
            .path
            .starts_with("/subscriptions/sub-1/resourceGroups/bench-rg/")
    );
    assert_eq!(
        reqs[start].auth.as_deref(),
        Some("Bearer tok-1"),
        "ARM gets the Entra token"
    );
    let polls = reqs[start..]
        .iter()
        .filter(|r| r.path.contains("/instanceView"))
        .count();
    assert!(polls >= 2, "polled until running: {polls}");
    let token = reqs
        .iter()
        .find(|r| r.path == "/tenant-1/oauth2/v2.0/token")
        .unwrap();
    assert!(
        token.body.contains("grant_type=client_credentials")
            && token.body.contains("client_secret=s3cret")
    );
    assert!(
        token.body.contains("scope=http%3A%2F%2F127.0.0.1"),
        "scope follows the ARM endpoint: {}",
        token.body
    );
}

#[tokio::test]
async fn starting_a_running_vm_sends_nothing_and_says_so() {
    let fake = FakeArm::start("bench-vm", "running").await;
    let vm = vm(&fake, "bench-vm", secret());
    assert!(vm.start(Duration::from_secs(5)).await.unwrap());
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path.contains("/start"))
    );
}

#[tokio::test]
async fn deallocate_waits_or_only_requests_and_is_idempotent() {
    let fake = FakeArm::start("bench-vm", "running").await;
    let vm = vm(&fake, "bench-vm", secret());
    vm.deallocate(false, Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        fake.state.lock().unwrap().power,
        "deallocating",
        "no-wait returns after the 202"
    );
    vm.deallocate(true, Duration::from_secs(20)).await.unwrap();
    assert_eq!(vm.power_state().await.unwrap(), PowerState::Deallocated);
    let posts = |f: &FakeArm| {
        f.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.contains("/deallocate"))
            .count()
    };
    let before = posts(&fake);
    vm.deallocate(true, Duration::from_secs(5)).await.unwrap();
    assert_eq!(posts(&fake), before, "a deallocated VM needs no request");
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after() {
    let fake = FakeArm::start("bench-vm", "deallocated").await;
    fake.fault(Fault {
        path_contains: "/start?",
        status: 429,
        headers: vec![("retry-after", "1".into())],
        body: "{\"error\":{\"code\":\"TooManyRequests\",\"message\":\"slow down\"}}".into(),
    });
    let vm = vm(&fake, "bench-vm", secret());
    vm.start(Duration::from_secs(20)).await.unwrap();
    let starts: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/start?"))
        .collect();
    assert_eq!(starts.len(), 2, "the throttled request was sent again");
    let waited = starts[1].at - starts[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "waited {waited:?} for Retry-After: 1"
    );
}

#[tokio::test]
async fn a_transient_5xx_is_retried() {
    let fake = FakeArm::start("bench-vm", "running").await;
    fake.fault(Fault {
        path_contains: "/instanceView",
        status: 503,
        headers: vec![],
        body: "{\"error\":{\"code\":\"ServiceUnavailable\",\"message\":\"try later\"}}".into(),
    });
    fake.fault(Fault {
        path_contains: "/instanceView",
        status: 500,
        headers: vec![],
        body: "{}".into(),
    });
    let vm = vm(&fake, "bench-vm", secret());
    assert_eq!(vm.power_state().await.unwrap(), PowerState::Running);
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.path.contains("/instanceView"))
            .count(),
        3
    );
}

#[tokio::test]
async fn an_unknown_vm_fails_fast_with_a_clear_message() {
    let fake = FakeArm::start("bench-vm", "running").await;
    let vm = vm(&fake, "no-such-vm", secret());
    let t = Instant::now();
    let err = vm.start(Duration::from_secs(20)).await.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5), "404 is not retried");
    let msg = err.to_string();
    assert!(msg.contains("no-such-vm") && msg.contains("404"), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
}

#[tokio::test]
async fn github_oidc_fetches_a_fresh_id_token_for_every_new_azure_token() {
    let fake = FakeArm::start("bench-vm", "running").await;
    // Azure tokens that expire within the refresh margin: every call needs a new one.
    fake.state.lock().unwrap().token_expires_in = 60;
    let credential = CredentialConfig::GithubOidc {
        tenant_id: "tenant-1".into(),
        client_id: "client-1".into(),
        request_url: format!("{}oidc?api-version=2.0", fake.url()),
        request_token: "gh-request-token".into(),
    };
    let vm = vm(&fake, "bench-vm", credential);
    vm.power_state().await.unwrap();
    vm.power_state().await.unwrap();
    let s = fake.state.lock().unwrap();
    assert_eq!((s.github_tokens_issued, s.tokens_issued), (2, 2));
    let oidc = s
        .requests
        .iter()
        .find(|r| r.path.starts_with("/oidc"))
        .unwrap();
    assert!(
        oidc.path
            .contains("audience=api%3A%2F%2FAzureADTokenExchange"),
        "{}",
        oidc.path
    );
    assert_eq!(oidc.auth.as_deref(), Some("Bearer gh-request-token"));
    let token = s
        .requests
        .iter()
        .filter(|r| r.path.contains("/oauth2/v2.0/token"))
        .nth(1)
        .unwrap();
    assert!(
        token.body.contains("client_assertion=gh-jwt-2"),
        "the second exchange used the second ID token: {}",
        token.body
    );
    assert!(token.body.contains(
        "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
    ));
}

#[tokio::test]
async fn long_lived_tokens_are_cached() {
    let fake = FakeArm::start("bench-vm", "running").await;
    let vm = vm(&fake, "bench-vm", secret());
    for _ in 0..3 {
        vm.power_state().await.unwrap();
    }
    assert_eq!(fake.state.lock().unwrap().tokens_issued, 1);
}

#[tokio::test]
async fn the_poller_gives_up_at_its_deadline() {
    let fake = FakeArm::start("bench-vm", "deallocated").await;
    fake.state.lock().unwrap().polls_per_transition = 1_000_000;
    let vm = vm(&fake, "bench-vm", secret());
    let t = Instant::now();
    let err = vm.start(Duration::from_millis(500)).await.unwrap_err();
    assert!(matches!(err, AzureError::Deadline { .. }), "{err}");
    assert!(err.to_string().contains("PowerState/running"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

/// The power-state read before a deallocation fails (here a 403 that no retry cures): the
/// deallocation is requested all the same, since the VM bills until it is.
#[tokio::test]
async fn a_failed_power_state_read_does_not_stop_the_deallocation() {
    let fake = FakeArm::start("bench-vm", "running").await;
    fake.fault(Fault {
        path_contains: "/instanceView",
        status: 403,
        headers: vec![],
        body: "{\"error\":{\"code\":\"AuthorizationFailed\",\"message\":\"no read\"}}".into(),
    });
    let vm = vm(&fake, "bench-vm", secret());
    vm.deallocate(false, Duration::from_secs(20)).await.unwrap();
    let reqs = fake.requests();
    let read = reqs
        .iter()
        .position(|r| r.path.contains("/instanceView"))
        .expect("the state was read first");
    assert!(
        reqs[read..]
            .iter()
            .any(|r| r.method == "POST" && r.path.contains("/deallocate?")),
        "{reqs:?}"
    );
}

/// ARM reached through a network that drops everything, connections left open (the
/// controller's network gone): every request gives up after `request_timeout` and is retried
/// like any I/O error, so the deallocation fails in bounded time, saying so, instead of
/// waiting for ever while the VM bills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_into_a_dead_network_times_out_instead_of_hanging() {
    let fake = FakeArm::start("bench-vm", "running").await;
    let relay = crate::support::relay::Relay::start(fake.addr.port());
    let url = url::Url::parse(&format!("http://127.0.0.1:{}/", relay.port)).unwrap();
    let options = AzureOptions {
        arm_endpoint: url.clone(),
        authority_host: url,
        poll_interval: Duration::from_millis(50),
        max_retries: 2,
        request_timeout: Duration::from_secs(1),
        ..AzureOptions::default()
    };
    let vm = VmRef {
        subscription: "sub-1".into(),
        resource_group: "bench-rg".into(),
        name: "bench-vm".into(),
    };
    let vm = AzureVm::new(vm, secret(), options).unwrap();
    // The token and a first read get through; then the network goes silent.
    assert_eq!(vm.power_state().await.unwrap(), PowerState::Running);
    relay.freeze();
    let t = Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(60),
        vm.deallocate(true, Duration::from_secs(20)),
    )
    .await
    .expect("the deallocation gives up instead of hanging")
    .unwrap_err();
    assert!(
        err.to_string().contains("failed to deallocate VM bench-vm"),
        "{err}"
    );
    // A read and a deallocation, each tried three times at 1 s, with the policy's delays
    // between (12.4 s in all, measured once).
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert_eq!(fake.state.lock().unwrap().power, "running");
}
