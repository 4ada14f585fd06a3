//! What a request tried before the attempt that answers it, said in the answer's headers:
//! `X-Fallback-Attempts: <n>` and `X-Fallback-Trail: <platform>/<model>=<class>, …`.

use crate::http::{HeadBuilder, header_safe};

/// The most entries the trail names (a request makes at most 20 attempts).
const MAX_ENTRIES: usize = 20;

/// The failed attempts so far, as the headers will say them.
#[derive(Default)]
pub struct Trail {
    attempts: u32,
    /// Header-safe `platform/model=class` entries joined with `, `.
    text: String,
}

impl Trail {
    /// Notes one failed attempt.
    pub fn push(&mut self, platform: &str, model: &str, class: &str) {
        self.attempts += 1;
        if self.attempts as usize > MAX_ENTRIES {
            return;
        }
        if !self.text.is_empty() {
            self.text.push_str(", ");
        }
        self.text
            .push_str(&header_safe(&format!("{platform}/{model}={class}")));
    }

    /// Adds the headers when anything failed before.
    pub fn headers<'r, 'a>(&self, head: HeadBuilder<'r, 'a>) -> HeadBuilder<'r, 'a> {
        if self.attempts == 0 {
            return head;
        }
        head.header_u64("X-Fallback-Attempts", u64::from(self.attempts))
            .header("X-Fallback-Trail", &self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_header_safe_and_bounded() {
        let mut t = Trail::default();
        t.push("groq", "llama 3\r\nX-Evil: 1", "rate_limited");
        assert_eq!(t.text, "groq/llama%203%0D%0AX-Evil:%201=rate_limited");
        for _ in 0..30 {
            t.push("a", "b", "unavailable");
        }
        assert_eq!(t.attempts, 31);
        assert!(t.text.contains("=rate_limited, a/b=unavailable, "));
        assert_eq!(t.text.matches('=').count(), MAX_ENTRIES);
    }
}
