//! `TCP_NODELAY` on the database connections sqlx opens.
//!
//! sqlx 0.9.0 no longer sets `TCP_NODELAY` on its TCP sockets (upstream issue
//! launchbadge/sqlx#4335; the fix, #4336, is merged but not in a release).
//! Without it, a message larger than what the socket takes in one write (the
//! send buffer starts at 16 KiB on Linux) goes out in two parts; Nagle's
//! algorithm holds the second part until the first is acknowledged, and
//! PostgreSQL, waiting for the rest of the message, delays that
//! acknowledgement by 40 ms. Measured here: a webhook batch of 32 events took
//! 2.6 ms, one of 48 took 47 ms (BENCHMARKS.md W8). Batches under a flood and
//! sync pages are exactly such messages.
//!
//! sqlx hands out no socket, so after a pool opens a connection this sets the
//! option on every TCP socket of this process whose peer is the database's
//! port (the new connection among them). Setting it on any other socket is
//! harmless: it only stops the kernel from holding back small writes. On
//! other systems than Linux, and for Unix-socket connections, it does nothing.
//! Remove it when a sqlx release sets the option again.

/// Sets `TCP_NODELAY` on this process's TCP sockets connected to port `port`
/// that do not have it yet. Returns how many it changed.
pub fn set_on_sockets_to_port(port: u16) -> usize {
    let mut changed = 0;
    for_each_socket(|socket| {
        if port_of(socket.peer_addr()) == Some(port)
            && socket.tcp_nodelay().is_ok_and(|on| !on)
            && socket.set_tcp_nodelay(true).is_ok()
        {
            changed += 1;
        }
    });
    changed
}

/// Whether the TCP socket of this process bound to local port `port` has
/// `TCP_NODELAY` (`None`: no such socket, or not Linux). For checks: a
/// connection's local port is what PostgreSQL's `inet_client_port()` says.
pub fn is_set_on_local_port(port: u16) -> Option<bool> {
    let mut found = None;
    for_each_socket(|socket| {
        if found.is_none() && port_of(socket.local_addr()) == Some(port) {
            found = socket.tcp_nodelay().ok();
        }
    });
    found
}

/// The port of an IP socket address.
fn port_of(addr: std::io::Result<socket2::SockAddr>) -> Option<u16> {
    addr.ok()?.as_socket().map(|addr| addr.port())
}

/// Calls `visit` with each socket this process has open.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn for_each_socket(mut visit: impl FnMut(socket2::SockRef<'_>)) {
    use std::os::fd::BorrowedFd;

    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in entries.flatten() {
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        let fd = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok());
        let Some(fd) = fd.filter(|_| is_socket) else {
            continue;
        };
        // SAFETY: the descriptor is only used for socket option and address
        // calls during `visit`. If another thread closed it since the
        // directory was read, they fail (EBADF) or act on whatever reused the
        // number: reads, and at worst TCP_NODELAY on another TCP socket of
        // this process, which is harmless (see the module docs).
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        visit(socket2::SockRef::from(&fd));
    }
}

/// Does nothing on this system (see the module docs).
#[cfg(not(target_os = "linux"))]
fn for_each_socket(_visit: impl FnMut(socket2::SockRef<'_>)) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn nagle_is_turned_off_on_sockets_to_the_port_and_only_there() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let bystander = std::net::TcpStream::connect(other.local_addr().unwrap()).unwrap();
        let client_port = client.local_addr().unwrap().port();
        assert_eq!(
            is_set_on_local_port(client_port),
            Some(false),
            "Nagle is on by default"
        );

        assert!(set_on_sockets_to_port(listener.local_addr().unwrap().port()) >= 1);

        assert!(client.nodelay().unwrap());
        assert_eq!(is_set_on_local_port(client_port), Some(true));
        assert!(
            !bystander.nodelay().unwrap(),
            "a socket to another port is left alone"
        );
        assert_eq!(
            set_on_sockets_to_port(listener.local_addr().unwrap().port()),
            0,
            "nothing left to change"
        );
    }
}
