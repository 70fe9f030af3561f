//! A fixed-size byte ring: the console output a client gets replayed on attach.

#[derive(Debug, Clone)]
pub struct RingBuffer {
    buf: Vec<u8>,
    cap: usize,
    /// Index of the oldest byte.
    start: usize,
    len: usize,
}

impl RingBuffer {
    pub fn new(cap: usize) -> Self {
        RingBuffer {
            buf: Vec::new(),
            cap,
            start: 0,
            len: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append, dropping the oldest bytes beyond the capacity.
    pub fn push(&mut self, data: &[u8]) {
        if self.cap == 0 {
            return;
        }
        if self.buf.len() < self.cap {
            self.buf.resize(self.cap, 0);
        }
        let data = if data.len() > self.cap {
            &data[data.len() - self.cap..]
        } else {
            data
        };
        for &b in data {
            let end = (self.start + self.len) % self.cap;
            self.buf[end] = b;
            if self.len == self.cap {
                self.start = (self.start + 1) % self.cap;
            } else {
                self.len += 1;
            }
        }
    }

    /// The buffered bytes, oldest first.
    pub fn contents(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        let first = (self.cap - self.start).min(self.len);
        if self.len > 0 {
            out.extend_from_slice(&self.buf[self.start..self.start + first]);
            out.extend_from_slice(&self.buf[..self.len - first]);
        }
        out
    }

    pub fn clear(&mut self) {
        self.start = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_bytes() {
        let mut r = RingBuffer::new(8);
        assert!(r.is_empty());
        r.push(b"hello");
        assert_eq!(r.contents(), b"hello");
        r.push(b" world");
        assert_eq!(r.contents(), b"lo world");
        assert_eq!(r.len(), 8);
        r.push(b"0123456789abc");
        assert_eq!(
            r.contents(),
            b"6789abc".iter().copied().fold(vec![b'5'], |mut v, b| {
                v.push(b);
                v
            })
        );
        r.clear();
        assert!(r.contents().is_empty());
        r.push(b"x");
        assert_eq!(r.contents(), b"x");
    }

    #[test]
    fn zero_capacity_stores_nothing() {
        let mut r = RingBuffer::new(0);
        r.push(b"abc");
        assert!(r.contents().is_empty());
    }

    #[test]
    fn matches_a_model() {
        // Compare against "keep the last cap bytes of everything pushed".
        let mut all = Vec::new();
        let mut r = RingBuffer::new(7);
        for i in 0..200u32 {
            let chunk: Vec<u8> = (0..(i % 11)).map(|j| (i * 31 + j) as u8).collect();
            r.push(&chunk);
            all.extend_from_slice(&chunk);
            let want = &all[all.len().saturating_sub(7)..];
            assert_eq!(r.contents(), want);
        }
    }
}
