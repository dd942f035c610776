//! Open sockets per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::metrics;

/// Counts open sockets by address.
#[derive(Debug)]
pub struct Connections {
    per_ip: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open socket, counted until dropped.
#[derive(Debug)]
pub struct Admitted {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Connections {
    /// At most `per_ip` sockets from one address.
    pub fn new(per_ip: usize) -> Arc<Self> {
        Arc::new(Self { per_ip, open: Mutex::default() })
    }

    /// Counts a new socket from `ip`, unless that address is at its limit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_default();
        if *count >= self.per_ip {
            return None;
        }
        *count += 1;
        metrics::socket(1.0);
        Some(Admitted { connections: self.clone(), ip })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.connections.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
        metrics::socket(-1.0);
    }
}
