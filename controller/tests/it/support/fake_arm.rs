//! An in-process fake of Azure Resource Manager and Microsoft Entra on 127.0.0.1, speaking
//! their wire format: the v2 token endpoint (client credentials, secret or assertion),
//! GitHub's OIDC token endpoint, `POST …/start|deallocate` answered 202 with
//! `Azure-AsyncOperation` and `Location`, and `GET …/instanceView` with `PowerState/…`
//! codes that move through starting/deallocating over a few polls. Scripted faults (429
//! with Retry-After, 5xx, 404 with an ARM error body) are served first; every request is
//! recorded.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub auth: Option<String>,
    pub body: String,
    pub at: std::time::Instant,
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub path_contains: &'static str,
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

#[derive(Debug)]
pub struct State {
    pub vm: String,
    pub power: String,
    /// (target state, instance-view polls until it is reached)
    pub pending: Option<(String, u32)>,
    /// `ProvisioningState/<this>` in the instance view.
    pub provisioning: String,
    /// When set, a start is accepted and then fails like an allocation failure: the VM
    /// falls back to deallocated with `ProvisioningState/failed/<code>` and this message.
    pub fail_start: Option<(String, String)>,
    pub polls_per_transition: u32,
    pub token_expires_in: i64,
    pub tokens_issued: u32,
    pub github_tokens_issued: u32,
    pub faults: VecDeque<Fault>,
    pub requests: Vec<Recorded>,
}

#[derive(Clone)]
pub struct FakeArm {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
}

impl FakeArm {
    pub async fn start(vm: &str, power: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            vm: vm.into(),
            power: power.into(),
            pending: None,
            provisioning: "succeeded".into(),
            fail_start: None,
            polls_per_transition: 2,
            token_expires_in: 3600,
            tokens_issued: 0,
            github_tokens_issued: 0,
            faults: VecDeque::new(),
            requests: Vec::new(),
        }));
        let shared = state.clone();
        super::http::serve(listener, move |req| {
            route(
                &shared,
                &req.method,
                &req.path,
                &req.headers,
                &req.body,
                addr,
            )
        });
        FakeArm { addr, state }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn fault(&self, f: Fault) {
        self.state.lock().unwrap().faults.push_back(f);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }
}

use super::http::Reply;

fn route(
    state: &Mutex<State>,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &str,
    addr: SocketAddr,
) -> Reply {
    let mut s = state.lock().unwrap();
    s.requests.push(Recorded {
        method: method.into(),
        path: path.into(),
        auth: headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.clone()),
        body: body.into(),
        at: std::time::Instant::now(),
    });
    if let Some(i) = s.faults.iter().position(|f| path.contains(f.path_contains)) {
        let f = s.faults.remove(i).unwrap();
        return (f.status, f.headers, f.body);
    }
    if path.contains("/oauth2/v2.0/token") {
        s.tokens_issued += 1;
        let json = format!(
            "{{\"token_type\":\"Bearer\",\"expires_in\":{},\"ext_expires_in\":{0},\"access_token\":\"tok-{}\"}}",
            s.token_expires_in, s.tokens_issued
        );
        return (200, vec![], json);
    }
    // The instance metadata endpoint, as the VM's managed identity sees it.
    if path.starts_with("/metadata/") {
        if !headers.iter().any(|(k, v)| k == "metadata" && v == "true") {
            return (400, vec![], "{\"error\":\"bad_request\",\"error_description\":\"Required metadata header not specified\"}".into());
        }
        if path.starts_with("/metadata/identity/oauth2/token") {
            return (200, vec![], "{\"access_token\":\"mi-token\",\"expires_in\":\"3599\",\"token_type\":\"Bearer\",\"resource\":\"https://management.azure.com/\"}".into());
        }
        if path.starts_with("/metadata/instance/compute") {
            let json = format!(
                "{{\"subscriptionId\":\"sub-1\",\"resourceGroupName\":\"bench-rg\",\"name\":\"{}\",\"location\":\"westus2\"}}",
                s.vm
            );
            return (200, vec![], json);
        }
    }
    if path.starts_with("/oidc") {
        s.github_tokens_issued += 1;
        return (
            200,
            vec![],
            format!(
                "{{\"count\":1,\"value\":\"gh-jwt-{}\"}}",
                s.github_tokens_issued
            ),
        );
    }
    let vm_path = format!("/providers/Microsoft.Compute/virtualMachines/{}", s.vm);
    if !path.contains(&vm_path) {
        let body = "{\"error\":{\"code\":\"ResourceNotFound\",\"message\":\"The Resource 'Microsoft.Compute/virtualMachines/…' was not found.\"}}";
        return (
            404,
            vec![("x-ms-error-code", "ResourceNotFound".into())],
            body.into(),
        );
    }
    let operation = format!(
        "http://{addr}/subscriptions/s/providers/Microsoft.Compute/locations/westus2/operations/op-1?api-version=2024-07-01"
    );
    let accepted = |s: &mut State, transitional: &str, target: &str| -> Reply {
        s.power = transitional.into();
        s.pending = Some((target.into(), s.polls_per_transition));
        (
            202,
            vec![
                ("azure-asyncoperation", operation.clone()),
                ("location", operation.clone()),
                ("retry-after", "1".into()),
            ],
            String::new(),
        )
    };
    if method == "POST" && path.contains("/start?") {
        s.provisioning = "updating".into();
        if s.fail_start.is_some() {
            return accepted(&mut s, "starting", "deallocated");
        }
        return accepted(&mut s, "starting", "running");
    }
    if method == "POST" && path.contains("/deallocate?") {
        return accepted(&mut s, "deallocating", "deallocated");
    }
    if method == "GET" && path.contains("/instanceView?") {
        if let Some((target, left)) = s.pending.clone() {
            if left <= 1 {
                s.power = target;
                s.pending = None;
                s.provisioning = match &s.fail_start {
                    Some((code, _)) if s.power == "deallocated" => format!("failed/{code}"),
                    _ => "succeeded".into(),
                };
            } else {
                s.pending = Some((target, left - 1));
            }
        }
        let provisioning = match (&s.fail_start, s.provisioning.starts_with("failed")) {
            (Some((_, message)), true) => serde_json::json!({
                "code": format!("ProvisioningState/{}", s.provisioning),
                "level": "Error",
                "displayStatus": "Provisioning failed",
                "message": message,
            }),
            _ => serde_json::json!({
                "code": format!("ProvisioningState/{}", s.provisioning),
                "level": "Info",
                "displayStatus": format!("Provisioning {}", s.provisioning),
            }),
        };
        let json = serde_json::json!({
            "computerName": s.vm,
            "statuses": [
                provisioning,
                {"code": format!("PowerState/{}", s.power), "level": "Info", "displayStatus": format!("VM {}", s.power)},
            ],
        })
        .to_string();
        return (200, vec![], json);
    }
    (
        400,
        vec![],
        "{\"error\":{\"code\":\"BadRequest\",\"message\":\"unexpected request\"}}".into(),
    )
}
