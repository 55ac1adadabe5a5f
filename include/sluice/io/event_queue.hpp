// event_queue<T>: a bounded in-process queue, the embedding API of stream mode. Host threads
// push events (or batches of them); the stream runner pops them in batches. A full queue blocks
// `push` and fails `try_push`, so a slow pipeline slows its producers instead of growing memory.
// The stream runner also uses it between its I/O thread and its workers.
//
//   sluice::event_queue<sample> q(65536);
//   std::jthread engine([&] { sluice::run_stream(sluice::from_queue(q), flow, sink); });
//   q.push(sample{...});   // from any number of host threads
//   q.close();             // end of stream: the runner drains what was pushed and returns
//
// Performance: one uncontended lock per push (push_batch amortises it); pops take up to a whole
// batch under one lock; a consumer is only notified when it is waiting.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

namespace sluice {

template <class T>
class event_queue {
 public:
  using value_type = T;

  explicit event_queue(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity), ring_(capacity_ + 8) {}
  event_queue(const event_queue&) = delete;
  event_queue& operator=(const event_queue&) = delete;

  /// Waits while the queue is full. Returns false (and drops nothing: `v` is untouched) once the
  /// queue is closed.
  bool push(T v) {
    std::unique_lock lock(mutex_);
    space_.wait(lock, [&] { return count_ < capacity_ || closed_; });
    if (closed_) {
      return false;
    }
    put(std::move(v));
    wake_consumer(lock);
    return true;
  }

  /// Never waits: false when the queue is full or closed (then `v` is untouched).
  bool try_push(T& v) {
    std::unique_lock lock(mutex_);
    if (count_ >= capacity_ || closed_) {
      wants_space_ = wants_space_ || !closed_;
      return false;
    }
    put(std::move(v));
    wake_consumer(lock);
    return true;
  }
  bool try_push(T&& v) { return try_push(v); }

  /// Pushes [first, last), waiting for space as needed. Returns how many went in (all of them
  /// unless the queue closed meanwhile).
  template <class It>
  std::size_t push_batch(It first, It last) {
    std::size_t pushed = 0;
    std::unique_lock lock(mutex_);
    while (first != last) {
      space_.wait(lock, [&] { return count_ < capacity_ || closed_; });
      if (closed_) {
        break;
      }
      while (first != last && count_ < capacity_) {
        put(T(*first));
        ++first;
        ++pushed;
      }
      wake_consumer(lock);
      if (first != last) {
        lock.lock();  // wake_consumer released it
      }
    }
    return pushed;
  }

  /// Push even when full: for a few small control messages that must never be refused (an
  /// input's end). Returns false only when the queue is closed.
  bool push_always(T v) {
    std::unique_lock lock(mutex_);
    if (closed_) {
      return false;
    }
    if (count_ == ring_.size()) {
      grow();
    }
    put(std::move(v));
    wake_consumer(lock);
    return true;
  }

  /// Moves up to `max` events into `out` (appending). Waits until there is at least one, the
  /// queue is closed, or interrupted() is true (checked on poke()). Returns the number moved: 0
  /// means closed and drained, or interrupted.
  template <class Interrupted>
  std::size_t pop_batch(std::vector<T>& out, std::size_t max, Interrupted&& interrupted) {
    std::function<void()> on_space;
    std::size_t n = 0;
    {
      std::unique_lock lock(mutex_);
      ++waiting_;
      ready_.wait(lock, [&] { return count_ > 0 || closed_ || interrupted(); });
      --waiting_;
      const bool was_full = count_ >= capacity_;
      while (n < max && count_ > 0) {
        out.push_back(std::move(ring_[head_]));
        ring_[head_] = T{};
        head_ = head_ + 1 == ring_.size() ? 0 : head_ + 1;
        --count_;
        ++n;
      }
      if (n > 0 && was_full) {
        space_.notify_all();
      }
      if (n > 0 && wants_space_) {
        wants_space_ = false;
        on_space = on_space_;
      }
    }
    if (on_space) {
      on_space();
    }
    return n;
  }
  std::size_t pop_batch(std::vector<T>& out, std::size_t max) {
    return pop_batch(out, max, [] { return false; });
  }

  /// No more pushes; pops drain what is queued, then return 0.
  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
    space_.notify_all();
  }

  /// Wake a waiting pop_batch so that it re-checks its interrupted() predicate.
  void poke() {
    { std::lock_guard lock(mutex_); }  // a waiter is either before its check or asleep
    ready_.notify_all();
  }

  /// Called (from the popping thread, outside the lock) when space frees up after a try_push
  /// failed on a full queue: how a non-blocking producer such as an I/O loop resumes reading.
  void on_space(std::function<void()> fn) {
    std::lock_guard lock(mutex_);
    on_space_ = std::move(fn);
  }

  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock(mutex_);
    return count_;
  }
  [[nodiscard]] std::size_t capacity() const {
    return capacity_;
  }
  [[nodiscard]] bool closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }

 private:
  void put(T&& v) {
    const std::size_t tail = head_ + count_;  // no division on the hot path
    ring_[tail >= ring_.size() ? tail - ring_.size() : tail] = std::move(v);
    ++count_;
  }

  // Notify outside the lock, and only when a consumer sleeps: the common push costs one lock.
  void wake_consumer(std::unique_lock<std::mutex>& lock) {
    const bool sleeper = waiting_ > 0;
    lock.unlock();
    if (sleeper) {
      ready_.notify_one();
    }
  }

  void grow() {
    std::vector<T> bigger(ring_.size() * 2);
    for (std::size_t i = 0; i < count_; ++i) {
      bigger[i] = std::move(ring_[(head_ + i) % ring_.size()]);
    }
    ring_ = std::move(bigger);
    head_ = 0;
  }

  const std::size_t capacity_;  // for events; push_always may go past it (the ring then grows)
  mutable std::mutex mutex_;
  std::condition_variable ready_;  // consumers: something to pop
  std::condition_variable space_;  // blocked producers: room to push
  std::vector<T> ring_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t waiting_ = 0;
  bool closed_ = false;
  bool wants_space_ = false;
  std::function<void()> on_space_;
};

}  // namespace sluice
