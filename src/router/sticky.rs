//! Sticky sessions: a conversation keeps the model that served its previous turn for 30 minutes,
//! refreshed on use. A bounded LRU (slab + intrusive list + index map), so memory
//! is capped whatever clients send.

use std::collections::HashMap;

use parking_lot::Mutex;

pub const TTL_MS: u64 = 30 * 60_000;
pub const CAPACITY: usize = 10_000;
const NIL: u32 = u32::MAX;

struct Node {
    key: u64,
    model: u32,
    last_used: u64,
    prev: u32,
    next: u32,
}

struct Lru {
    nodes: Vec<Node>,
    index: HashMap<u64, u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used; evicted first.
    tail: u32,
    capacity: usize,
}

impl Lru {
    fn unlink(&mut self, i: u32) {
        let (prev, next) = (self.nodes[i as usize].prev, self.nodes[i as usize].next);
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        self.nodes[i as usize].prev = NIL;
        self.nodes[i as usize].next = self.head;
        if self.head != NIL {
            self.nodes[self.head as usize].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }
}

/// Conversation hash → catalog model index.
pub struct Sticky {
    lru: Mutex<Lru>,
}

impl Default for Sticky {
    fn default() -> Self {
        Sticky::with_capacity(CAPACITY)
    }
}

impl Sticky {
    pub fn with_capacity(capacity: usize) -> Sticky {
        Sticky {
            lru: Mutex::new(Lru {
                nodes: Vec::new(),
                index: HashMap::new(),
                head: NIL,
                tail: NIL,
                capacity: capacity.max(1),
            }),
        }
    }

    /// The model of a live session, refreshing its expiry.
    pub fn get(&self, key: u64, now_ms: u64) -> Option<usize> {
        let mut lru = self.lru.lock();
        let i = *lru.index.get(&key)?;
        if now_ms.saturating_sub(lru.nodes[i as usize].last_used) > TTL_MS {
            return None;
        }
        lru.nodes[i as usize].last_used = now_ms;
        lru.unlink(i);
        lru.push_front(i);
        Some(lru.nodes[i as usize].model as usize)
    }

    /// Records that `model` served the session `key`.
    pub fn put(&self, key: u64, model: usize, now_ms: u64) {
        let mut lru = self.lru.lock();
        if let Some(&i) = lru.index.get(&key) {
            let node = &mut lru.nodes[i as usize];
            node.model = model as u32;
            node.last_used = now_ms;
            lru.unlink(i);
            lru.push_front(i);
            return;
        }
        let i = if lru.nodes.len() < lru.capacity {
            lru.nodes.push(Node {
                key,
                model: model as u32,
                last_used: now_ms,
                prev: NIL,
                next: NIL,
            });
            (lru.nodes.len() - 1) as u32
        } else {
            // Reuse the least recently used node.
            let i = lru.tail;
            lru.unlink(i);
            let old = lru.nodes[i as usize].key;
            lru.index.remove(&old);
            lru.nodes[i as usize] = Node {
                key,
                model: model as u32,
                last_used: now_ms,
                prev: NIL,
                next: NIL,
            };
            i
        };
        lru.index.insert(key, i);
        lru.push_front(i);
    }

    pub fn len(&self) -> usize {
        self.lru.lock().index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_after_ttl_and_refreshes_on_use() {
        let s = Sticky::default();
        s.put(1, 7, 0);
        assert_eq!(s.get(1, TTL_MS - 1), Some(7));
        assert_eq!(s.get(1, 2 * TTL_MS - 2), Some(7), "the lookup refreshed it");
        assert_eq!(s.get(1, 4 * TTL_MS), None);
    }

    #[test]
    fn evicts_least_recently_used_at_capacity() {
        let s = Sticky::with_capacity(3);
        s.put(1, 1, 0);
        s.put(2, 2, 0);
        s.put(3, 3, 0);
        assert_eq!(s.get(1, 1), Some(1));
        s.put(4, 4, 2);
        assert_eq!(s.len(), 3);
        assert_eq!(s.get(2, 3), None, "2 was least recently used");
        assert_eq!(s.get(1, 3), Some(1));
        assert_eq!(s.get(4, 3), Some(4));
        s.put(4, 9, 4);
        assert_eq!(s.get(4, 5), Some(9));
    }

    #[test]
    fn stays_bounded_under_many_sessions() {
        let s = Sticky::with_capacity(100);
        for k in 0..10_000u64 {
            s.put(k, (k % 5) as usize, k);
        }
        assert_eq!(s.len(), 100);
        assert_eq!(s.get(9_999, 10_000), Some(4));
    }
}
