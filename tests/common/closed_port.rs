//! A loopback port that refuses connections for as long as the test holds it.
//!
//! Binding a listener and closing it frees the number for anyone, another test's worker
//! included, so "nobody listens there" would hold only by luck. A socket that is bound but
//! never listens keeps the number reserved (no other socket can bind it) while every connection
//! to it is refused.

use std::os::fd::{FromRawFd, OwnedFd};

const AF_INET: u16 = 2;
const SOCK_STREAM: i32 = 1;

/// `struct sockaddr_in` (Linux).
#[repr(C)]
struct SockaddrIn {
    family: u16,
    /// Network byte order.
    port: u16,
    /// Network byte order.
    addr: u32,
    zero: [u8; 8],
}

extern "C" {
    fn socket(domain: i32, kind: i32, protocol: i32) -> i32;
    fn bind(fd: i32, addr: *const SockaddrIn, len: u32) -> i32;
    fn getsockname(fd: i32, addr: *mut SockaddrIn, len: *mut u32) -> i32;
}

/// A reserved `127.0.0.1` port where connections are refused; released on drop.
pub struct ClosedPort {
    _socket: OwnedFd,
    pub port: u16,
}

impl ClosedPort {
    pub fn reserve() -> ClosedPort {
        let loopback = SockaddrIn {
            family: AF_INET,
            port: 0,
            addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
            zero: [0; 8],
        };
        let len = std::mem::size_of::<SockaddrIn>() as u32;
        // SAFETY: plain syscalls on a socket this function owns; the pointers are to live locals
        // of the right size.
        unsafe {
            let fd = socket(i32::from(AF_INET), SOCK_STREAM, 0);
            assert!(fd >= 0, "socket(): {}", std::io::Error::last_os_error());
            let socket = OwnedFd::from_raw_fd(fd);
            let bound = bind(fd, &loopback, len);
            assert_eq!(bound, 0, "bind(): {}", std::io::Error::last_os_error());
            let mut addr = SockaddrIn {
                port: 0,
                ..loopback
            };
            let mut addr_len = len;
            let named = getsockname(fd, &mut addr, &mut addr_len);
            assert_eq!(
                named,
                0,
                "getsockname(): {}",
                std::io::Error::last_os_error()
            );
            ClosedPort {
                _socket: socket,
                port: u16::from_be(addr.port),
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
