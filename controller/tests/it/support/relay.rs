//! A TCP relay on loopback between a client and a server, to play a network that dies:
//! `freeze` stops forwarding in both directions while both connections stay open (a
//! NAT that dropped its mapping, a partition); `cut` closes everything (a reset).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

const FORWARDING: u8 = 0;
const FROZEN: u8 = 1;
const CUT: u8 = 2;

pub struct Relay {
    pub port: u16,
    state: Arc<AtomicU8>,
}

impl Relay {
    /// Relays every connection made to the returned port to `127.0.0.1:target`.
    pub fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(AtomicU8::new(FORWARDING));
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if shared.load(Ordering::SeqCst) == CUT {
                    return;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    return;
                };
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let state = shared.clone();
                    std::thread::spawn(move || pump(from, to, &state));
                }
            }
        });
        Relay { port, state }
    }

    pub fn freeze(&self) {
        self.state.store(FROZEN, Ordering::SeqCst);
    }

    pub fn cut(&self) {
        self.state.store(CUT, Ordering::SeqCst);
        // Unblock the accept loop so it sees the state.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Copies `from` to `to` while forwarding; bounded: every wait is a short read timeout,
/// and the loop ends when either side closes or the relay is cut.
fn pump(mut from: TcpStream, mut to: TcpStream, state: &AtomicU8) {
    from.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match state.load(Ordering::SeqCst) {
            CUT => break,
            FROZEN => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            _ => {}
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
