//! `TopK`: the `capacity` largest scores seen so far, as a binary min-heap.
//!
//! The root is the smallest kept score, so [`TopK::threshold`] is O(1) and a score that does
//! not beat it is rejected with one comparison (the common case when streaming millions of
//! distractor scores). Scores are f32 (the blocked kernel) or f64 (exact rescoring).

/// A score type with infinities (f32, f64).
pub trait Score: Copy + PartialOrd {
    /// Negative infinity.
    const NEG_INFINITY: Self;
    /// Positive infinity.
    const INFINITY: Self;
}

impl Score for f32 {
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    const INFINITY: Self = f32::INFINITY;
}

impl Score for f64 {
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    const INFINITY: Self = f64::INFINITY;
}

/// The `capacity` largest `(score, item)` pairs pushed so far.
#[derive(Debug, Clone)]
pub struct TopK<T, S = f32> {
    capacity: usize,
    heap: Vec<(S, T)>,
}

impl<T: Copy, S: Score> TopK<T, S> {
    /// An empty keeper of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            heap: Vec::with_capacity(capacity),
        }
    }

    /// A score must be strictly greater than this to be kept: `-inf` while not full, the
    /// smallest kept score once full (`+inf` when the capacity is 0).
    #[inline]
    pub fn threshold(&self) -> S {
        if self.capacity == 0 {
            S::INFINITY
        } else if self.heap.len() < self.capacity {
            S::NEG_INFINITY
        } else {
            self.heap[0].0
        }
    }

    /// Offers a score; keeps it if the keeper is not full or the score beats the smallest kept
    /// one (which is then dropped). Among equal scores the earlier ones are kept.
    #[inline]
    pub fn push(&mut self, score: S, item: T) {
        if self.capacity == 0 {
            return;
        }
        if self.heap.len() < self.capacity {
            self.heap.push((score, item));
            self.sift_up(self.heap.len() - 1);
        } else if score > self.heap[0].0 {
            self.heap[0] = (score, item);
            self.sift_down(0);
        }
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether `capacity` entries are kept (so some offered entries may have been dropped).
    pub fn is_full(&self) -> bool {
        self.heap.len() >= self.capacity
    }

    /// Number of kept entries.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Offers every entry of `other`.
    pub fn merge(&mut self, other: TopK<T, S>) {
        for (s, item) in other.heap {
            self.push(s, item);
        }
    }

    /// The kept entries, in no particular order.
    pub fn iter(&self) -> std::slice::Iter<'_, (S, T)> {
        self.heap.iter()
    }

    /// The kept entries, in no particular order.
    pub fn into_vec(self) -> Vec<(S, T)> {
        self.heap
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[i].0 < self.heap[parent].0 {
                self.heap.swap(i, parent);
                i = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut smallest = i;
            if l < n && self.heap[l].0 < self.heap[smallest].0 {
                smallest = l;
            }
            if r < n && self.heap[r].0 < self.heap[smallest].0 {
                smallest = r;
            }
            if smallest == i {
                break;
            }
            self.heap.swap(i, smallest);
            i = smallest;
        }
    }
}
