//! The emulator started in-process on a loopback port: the default target of `apiconform run`,
//! `bench`, `replay` and `snapshot`, started here and nowhere else.

use std::sync::Arc;
use std::time::Duration;

use super::{RunError, Target, TransportError};
use crate::emulator::{self, Emulator};

/// A running in-process emulator; stopped by [`Embedded::stop`] (or when dropped, as the
/// server's task then sees its stop signal's sender go away).
pub struct Embedded {
    target: Target,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Embedded {
    /// Starts an emulator with `config` on a free loopback port.
    pub async fn start(config: emulator::Config, timeout: Duration) -> Result<Embedded, RunError> {
        let unreachable = |e: std::io::Error| {
            RunError::Transport(TransportError::Unreachable {
                url: "127.0.0.1:0".into(),
                reason: format!("cannot listen on loopback: {e}"),
            })
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(unreachable)?;
        let addr = listener.local_addr().map_err(unreachable)?;
        let emu = Arc::new(Emulator::new(config));
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(emulator::server::serve(listener, emu, async {
            let _ = rx.await;
        }));
        let target = Target::new(&format!("http://{addr}"), timeout)?;
        Ok(Embedded {
            target,
            stop,
            server,
        })
    }

    /// Where it listens.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Stops accepting, lets what is in flight finish, and waits for the server to end.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}
