//! Minimal RESP2 client: command encoding, reply parsing and a small connection pool.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::Duration;

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Reply>),
}

const MAX_BULK: i64 = 512 * 1024 * 1024;
const MAX_ARRAY: i64 = 64 * 1024 * 1024;
const MAX_DEPTH: usize = 64;

/// Encode one command as a RESP array of bulk strings.
pub fn encode_command(args: &[Vec<u8>], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn proto_err(msg: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("redis protocol error: {msg}"),
    )
}

fn read_line<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "redis closed the connection",
        ));
    }
    if line.len() < 2 || line[line.len() - 2] != b'\r' || line[line.len() - 1] != b'\n' {
        return Err(proto_err("line not terminated by CRLF"));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn parse_int(b: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| proto_err("bad integer"))
}

/// Read one reply (recursively for arrays).
pub fn read_reply<R: BufRead>(r: &mut R) -> io::Result<Reply> {
    read_reply_depth(r, 0)
}

fn read_reply_depth<R: BufRead>(r: &mut R, depth: usize) -> io::Result<Reply> {
    if depth > MAX_DEPTH {
        return Err(proto_err("nesting too deep"));
    }
    let line = read_line(r)?;
    let (&kind, rest) = line.split_first().ok_or_else(|| proto_err("empty line"))?;
    match kind {
        b'+' => Ok(Reply::Simple(String::from_utf8_lossy(rest).into_owned())),
        b'-' => Ok(Reply::Error(String::from_utf8_lossy(rest).into_owned())),
        b':' => Ok(Reply::Int(parse_int(rest)?)),
        b'$' => {
            let n = parse_int(rest)?;
            if n < 0 {
                return Ok(Reply::Nil);
            }
            if n > MAX_BULK {
                return Err(proto_err("bulk too large"));
            }
            let mut buf = vec![0u8; n as usize + 2];
            r.read_exact(&mut buf)?;
            if &buf[n as usize..] != b"\r\n" {
                return Err(proto_err("bulk not terminated by CRLF"));
            }
            buf.truncate(n as usize);
            Ok(Reply::Bulk(buf))
        }
        b'*' => {
            let n = parse_int(rest)?;
            if n < 0 {
                return Ok(Reply::Nil);
            }
            if n > MAX_ARRAY {
                return Err(proto_err("array too large"));
            }
            let mut items = Vec::with_capacity((n as usize).min(1024));
            for _ in 0..n {
                items.push(read_reply_depth(r, depth + 1)?);
            }
            Ok(Reply::Array(items))
        }
        _ => Err(proto_err("unknown reply type")),
    }
}

/// One connection to redis.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn dial(addr: &SocketAddr) -> io::Result<Conn> {
        let s = TcpStream::connect_timeout(addr, Duration::from_secs(2))?;
        s.set_nodelay(true)?;
        // Generous: scripts/blocking commands may take a while, but never hang forever.
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        s.set_write_timeout(Some(Duration::from_secs(30)))?;
        Ok(Conn {
            reader: BufReader::with_capacity(64 * 1024, s),
        })
    }

    /// True when an idle pooled connection looks closed by the peer (EOF or error).
    fn looks_closed(&self) -> bool {
        if !self.reader.buffer().is_empty() {
            return true; // unexpected unread data: state unknown, do not reuse
        }
        let s = self.reader.get_ref();
        if s.set_nonblocking(true).is_err() {
            return true;
        }
        let mut b = [0u8; 1];
        let closed = match s.peek(&mut b) {
            Ok(_) => true, // EOF (0) or unsolicited data: both unusable
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        };
        closed || s.set_nonblocking(false).is_err()
    }

    /// Send several commands in one write and read exactly that many replies.
    /// On error, the flag says whether nothing at all came back (safe to retry elsewhere).
    fn run(&mut self, cmds: &[Vec<Vec<u8>>]) -> Result<Vec<Reply>, (io::Error, bool)> {
        let mut out = Vec::new();
        for c in cmds {
            encode_command(c, &mut out);
        }
        if let Err(e) = self.reader.get_mut().write_all(&out) {
            let dead = is_dead_connection(&e);
            return Err((e, dead));
        }
        match self.reader.fill_buf() {
            Ok([]) => {
                let e = io::Error::new(io::ErrorKind::UnexpectedEof, "redis closed the connection");
                return Err((e, true));
            }
            Ok(_) => {}
            Err(e) => {
                let dead = is_dead_connection(&e);
                return Err((e, dead));
            }
        }
        let mut replies = Vec::with_capacity(cmds.len());
        for _ in cmds {
            replies.push(read_reply(&mut self.reader).map_err(|e| (e, false))?);
        }
        Ok(replies)
    }
}

/// Pool of idle redis connections; broken connections are dropped, new ones dialled on demand.
pub struct Pool {
    host: String,
    port: u16,
    idle: Mutex<Vec<Conn>>,
    max_idle: usize,
}

impl Pool {
    pub fn new(host: String, port: u16) -> Pool {
        Pool {
            host,
            port,
            idle: Mutex::new(Vec::new()),
            max_idle: 128,
        }
    }

    fn addr(&self) -> io::Result<SocketAddr> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "cannot resolve redis host"))
    }

    fn take_idle(&self) -> Option<Conn> {
        let mut idle = match self.idle.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        while let Some(c) = idle.pop() {
            if !c.looks_closed() {
                return Some(c);
            }
        }
        None
    }

    fn put_back(&self, c: Conn) {
        let mut idle = match self.idle.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if idle.len() < self.max_idle {
            idle.push(c);
        }
    }

    /// Run commands pipelined on one connection. A connection that saw an I/O or protocol error
    /// is dropped. If a reused idle connection fails before any reply byte arrived (e.g. redis
    /// restarted), the batch is retried once on a freshly dialled connection.
    pub fn run(&self, cmds: &[Vec<Vec<u8>>]) -> io::Result<Vec<Reply>> {
        if let Some(mut c) = self.take_idle() {
            match c.run(cmds) {
                Ok(r) => {
                    self.put_back(c);
                    return Ok(r);
                }
                Err((_, true)) => {} // stale connection, nothing executed: dial a fresh one
                Err((e, false)) => return Err(e),
            }
        }
        let mut c = Conn::dial(&self.addr()?)?;
        let r = c.run(cmds).map_err(|(e, _)| e)?;
        self.put_back(c);
        Ok(r)
    }
}

fn is_dead_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn parse(b: &[u8]) -> io::Result<Reply> {
        read_reply(&mut Cursor::new(b.to_vec()))
    }

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        encode_command(
            &[b"SET".to_vec(), b"k".to_vec(), "é".as_bytes().to_vec()],
            &mut out,
        );
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\xc3\xa9\r\n".to_vec()
        );
        let mut out = Vec::new();
        encode_command(&[b"PING".to_vec(), Vec::new()], &mut out);
        assert_eq!(out, b"*2\r\n$4\r\nPING\r\n$0\r\n\r\n".to_vec());
    }

    #[test]
    fn parses_scalars() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), Reply::Simple("OK".into()));
        assert_eq!(
            parse(b"-ERR bad thing\r\n").unwrap(),
            Reply::Error("ERR bad thing".into())
        );
        assert_eq!(parse(b":-42\r\n").unwrap(), Reply::Int(-42));
        assert_eq!(
            parse(b"$3\r\nfoo\r\n").unwrap(),
            Reply::Bulk(b"foo".to_vec())
        );
        assert_eq!(parse(b"$0\r\n\r\n").unwrap(), Reply::Bulk(Vec::new()));
        assert_eq!(
            parse(b"$4\r\na\r\nb\r\n").unwrap(),
            Reply::Bulk(b"a\r\nb".to_vec())
        );
        assert_eq!(parse(b"$-1\r\n").unwrap(), Reply::Nil);
        assert_eq!(parse(b"*-1\r\n").unwrap(), Reply::Nil);
    }

    #[test]
    fn parses_nested_arrays() {
        let r = parse(b"*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n-ERR x\r\n").unwrap();
        assert_eq!(
            r,
            Reply::Array(vec![
                Reply::Int(1),
                Reply::Array(vec![Reply::Bulk(b"a".to_vec()), Reply::Nil]),
                Reply::Error("ERR x".into()),
            ])
        );
        assert_eq!(parse(b"*0\r\n").unwrap(), Reply::Array(vec![]));
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(parse(b"").is_err());
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b":abc\r\n").is_err());
        assert!(parse(b"$5\r\nab\r\n").is_err());
        assert!(parse(b"*2\r\n:1\r\n").is_err());
        assert!(parse(b"+OK\n").is_err());
    }

    #[test]
    fn reads_consecutive_replies() {
        let mut c = Cursor::new(b"+OK\r\n:5\r\n$-1\r\n".to_vec());
        assert_eq!(read_reply(&mut c).unwrap(), Reply::Simple("OK".into()));
        assert_eq!(read_reply(&mut c).unwrap(), Reply::Int(5));
        assert_eq!(read_reply(&mut c).unwrap(), Reply::Nil);
    }
}
