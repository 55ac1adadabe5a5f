// The byte readers behind the unbounded sources: a followed file (tail -F) and a pipe or stdin.
// Each test writes from one side and checks that the reader returns exactly those bytes, in
// order, whatever happens to the file in between, and that a stop request ends a blocked read.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/fd_reader.hpp"
#include "sluice/io/tail_file.hpp"
#include "temp_dir.hpp"

using namespace std::chrono_literals;

namespace {

using test_support::temp_dir;

void write_all(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    REQUIRE_MESSAGE(n > 0, "write failed: ", std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
}

/// A file opened for appending, as a logger holds it: it keeps writing to the same file even
/// after that file is renamed away.
struct appender {
  int fd;
  explicit appender(const std::string& path)
      : fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) {
    REQUIRE_MESSAGE(fd >= 0, path, ": cannot open for appending: ", std::strerror(errno));
  }
  appender(const appender&) = delete;
  appender& operator=(const appender&) = delete;
  ~appender() { ::close(fd); }
  void write(const std::string& bytes) const { write_all(fd, bytes); }
};

void append(const std::string& path, const std::string& bytes) {
  appender(path).write(bytes);
}

/// Requests stop if a minute passes first: a reader that loses bytes then fails the comparison
/// that follows instead of hanging the test run.
class hang_guard {
 public:
  hang_guard()
      : timer_([this](const std::stop_token& done) {
          if (!sluice::detail::sleep_unless_stopped(done, 60s)) {
            give_up_.request_stop();
          }
        }) {}
  [[nodiscard]] std::stop_token token() const { return give_up_.get_token(); }

 private:
  std::stop_source give_up_;
  std::jthread timer_;  // after give_up_: started once give_up_ exists, joined before it goes
};

/// Reads `count` bytes, or fewer if the reader returns 0 (end of input, or a hang given up).
/// With `rng`, each read asks for a random number of bytes, so reads end at arbitrary places.
template <class Reader>
std::string read_bytes(Reader& reader, std::size_t count, std::mt19937* rng = nullptr) {
  const hang_guard guard;
  std::string got;
  std::vector<char> buf(8192);
  while (got.size() < count) {
    std::size_t want = std::min(buf.size(), count - got.size());
    if (rng != nullptr) {
      want = std::uniform_int_distribution<std::size_t>(1, want)(*rng);
    }
    const std::size_t n = reader.read_some(buf.data(), want, guard.token());
    if (n == 0) {
      break;
    }
    got.append(buf.data(), n);
  }
  return got;
}

/// "" if `got` is `want`; otherwise where they part, briefly: a failure message that does not
/// print a megabyte.
std::string mismatch(const std::string& got, const std::string& want) {
  if (got == want) {
    return "";
  }
  std::size_t at = 0;
  while (at < got.size() && at < want.size() && got[at] == want[at]) {
    ++at;
  }
  const auto excerpt = [at](const std::string& s) {
    std::string out;
    for (std::size_t i = at; i < s.size() && i < at + 24; ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c < 0x7f) {
        out += static_cast<char>(c);
      } else {
        constexpr const char* hex = "0123456789abcdef";
        out += {'\\', 'x', hex[c >> 4U], hex[c & 15U]};
      }
    }
    return out;
  };
  return "got " + std::to_string(got.size()) + " bytes, want " + std::to_string(want.size()) +
         "; they differ from byte " + std::to_string(at) + ": got \"" + excerpt(got) + "\", want \"" + excerpt(want) +
         "\"";
}

std::string random_bytes(std::mt19937& rng, std::size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) {
    c = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
  }
  return s;
}

/// Runs `read` on another thread, requests stop once it has had time to block, and returns
/// what it returned. A read that ignores the stop request hangs here (the test times out).
template <class Read>
std::size_t result_after_stop(Read read) {
  std::stop_source stop;
  std::size_t result = 12345;
  std::thread reader([&] { result = read(stop.get_token()); });
  std::this_thread::sleep_for(30ms);  // let it block first; nothing is asserted about time
  stop.request_stop();
  reader.join();
  return result;
}

}  // namespace

TEST_CASE("tail_file: bytes appended in random pieces by another thread are read completely and in order") {
  temp_dir dir;
  const auto path = dir / "app.log";
  std::mt19937 rng(42);
  const std::string content = random_bytes(rng, 300'000);
  append(path, "");
  sluice::tail_file tail(path, {.poll = 1ms});

  std::jthread writer([&] {
    std::mt19937 wrng(7);
    appender out(path);
    for (std::size_t done = 0; done < content.size();) {
      const std::size_t piece =
          std::min(content.size() - done, std::uniform_int_distribution<std::size_t>(1, 5000)(wrng));
      out.write(content.substr(done, piece));
      done += piece;
      if (wrng() % 8 == 0) {
        std::this_thread::sleep_for(100us);  // let the reader catch up and wait at the end sometimes
      }
    }
  });
  const std::string got = read_bytes(tail, content.size(), &rng);
  writer.join();
  CHECK(mismatch(got, content) == "");
  CHECK(tail.position() == content.size());
  CHECK(tail.generation() == 0);
}

TEST_CASE("tail_file: a file that does not exist yet is waited for, then read from its start") {
  temp_dir dir;
  const auto path = dir / "later.log";
  for (const bool from_start : {true, false}) {
    CAPTURE(from_start);
    std::filesystem::remove(path);
    sluice::tail_file tail(path, {.poll = 1ms, .from_start = from_start});
    CHECK(tail.path() == path);
    std::string got;
    std::thread reader([&] { got = read_bytes(tail, 12); });
    std::this_thread::sleep_for(20ms);  // the reader is waiting for the file by now
    append(path, "first\nsecond");
    reader.join();
    CHECK(got == "first\nsecond");
    CHECK(tail.position() == 12);
    CHECK_MESSAGE(tail.generation() == 0, "the first appearance of the file is not a reopen");
  }
}

TEST_CASE("tail_file: from_start=false skips what the file holds when the reader is built") {
  temp_dir dir;
  const auto path = dir / "app.log";
  append(path, "old line\n");
  sluice::tail_file tail(path, {.poll = 1ms, .from_start = false});
  CHECK(tail.position() == 9);
  append(path, "new line\n");
  CHECK(read_bytes(tail, 9) == "new line\n");
  CHECK(tail.position() == 18);
  CHECK(tail.generation() == 0);
}

TEST_CASE("tail_file: a truncated file is read again from offset 0") {
  temp_dir dir;
  const auto path = dir / "app.log";
  append(path, "hello world\n");
  sluice::tail_file tail(path, {.poll = 1ms});
  CHECK(read_bytes(tail, 12) == "hello world\n");
  CHECK(tail.position() == 12);

  // copytruncate-style: the same file, cut to nothing and written again (shorter than before).
  REQUIRE(::truncate(path.c_str(), 0) == 0);
  append(path, "abc");
  CHECK(read_bytes(tail, 3) == "abc");
  CHECK(tail.position() == 3);
  CHECK(tail.generation() == 1);

  append(path, "def");
  CHECK(read_bytes(tail, 3) == "def");
  CHECK(tail.position() == 6);
  CHECK(tail.generation() == 1);
}

TEST_CASE("tail_file: on rotation the old file is read to its end before the new file, nothing lost or repeated") {
  temp_dir dir;
  const auto path = dir / "app.log";
  sluice::tail_file tail(path, {.poll = 1ms});
  {
    appender logger(path);
    logger.write("old-1\n");
    CHECK(read_bytes(tail, 6) == "old-1\n");
    logger.write("old-2\n");  // not read yet when the file is rotated

    REQUIRE(::rename(path.c_str(), (dir / "app.log.1").c_str()) == 0);
    logger.write("old-3\n");  // the logger has not reopened yet: still the old file
    // The path names nothing now: the reader stays on the old file, which may still grow.
    CHECK(read_bytes(tail, 12) == "old-2\nold-3\n");
    logger.write("old-4\n");
    CHECK(read_bytes(tail, 6) == "old-4\n");
    CHECK(tail.generation() == 0);
    logger.write("old-5\n");
  }
  append(path, "new-1\n");  // the logger reopens the path: a new file
  CHECK_MESSAGE(read_bytes(tail, 12) == "old-5\nnew-1\n", "the old file's tail must come before the new file");
  CHECK(tail.position() == 6);
  CHECK(tail.generation() == 1);

  // Deleted and recreated rather than renamed: the same, the new file from its start.
  REQUIRE(::unlink(path.c_str()) == 0);
  append(path, "newer\n");
  CHECK(read_bytes(tail, 6) == "newer\n");
  CHECK(tail.position() == 6);
  CHECK(tail.generation() == 2);
}

TEST_CASE("tail_file: repeated rotation under a concurrent writer loses and repeats nothing, file by file") {
  temp_dir dir;
  const auto path = dir / "app.log";
  constexpr int rotations = 20;
  constexpr int lines_per_file = 300;
  std::vector<std::string> files(rotations + 1);  // what the writer writes to each file, in order
  for (int g = 0; g <= rotations; ++g) {
    for (int i = 0; i < lines_per_file; ++i) {
      files[g] += "file " + std::to_string(g) + " line " + std::to_string(i) + "\n";
    }
  }
  sluice::tail_file tail(path, {.poll = 1ms});
  // 1 + the generation of the last bytes read: the reader has reached file g once this is > g.
  std::atomic<std::uint64_t> files_reached{0};

  std::jthread writer([&](const std::stop_token& stop) {
    std::mt19937 wrng(9);
    const auto write_in_pieces = [&wrng](const appender& out, const std::string& text) {
      for (std::size_t done = 0; done < text.size();) {
        const std::size_t piece =
            std::min(text.size() - done, std::uniform_int_distribution<std::size_t>(1, 200)(wrng));
        out.write(text.substr(done, piece));
        done += piece;
      }
    };
    for (int g = 0; g <= rotations; ++g) {
      const std::string& text = files[g];
      const std::size_t half = text.size() / 2;
      appender out(path);
      write_in_pieces(out, text.substr(0, half));
      if (g == rotations) {
        write_in_pieces(out, text.substr(half));
        break;
      }
      // A file rotated in and out before the reader reaches it would be skipped (as by tail -F):
      // rotate only once the reader follows the current file.
      while (files_reached.load() <= static_cast<std::uint64_t>(g) && !stop.stop_requested()) {
        std::this_thread::sleep_for(100us);
      }
      REQUIRE(::rename(path.c_str(), (path + "." + std::to_string(g)).c_str()) == 0);
      write_in_pieces(out, text.substr(half));  // after the rename, before the new file exists
    }
  });

  // One read_some at a time, publishing the file reached after each: the writer waits for it.
  // Each read's bytes are filed under the generation it reports: a read never spans two files,
  // so a source can end one input and begin the next exactly where the generation changes.
  std::vector<std::string> got(rotations + 1);
  std::size_t total = 0;
  std::size_t expected_total = 0;
  for (const auto& text : files) {
    expected_total += text.size();
  }
  std::vector<char> buf(4096);
  const hang_guard guard;
  while (total < expected_total) {
    const std::size_t n = tail.read_some(buf.data(), buf.size(), guard.token());
    if (n == 0 || tail.generation() > rotations) {
      break;
    }
    got[tail.generation()].append(buf.data(), n);
    total += n;
    files_reached.store(tail.generation() + 1);
  }
  writer.request_stop();
  writer.join();
  for (int g = 0; g <= rotations; ++g) {
    CAPTURE(g);
    CHECK(mismatch(got[g], files[g]) == "");
  }
  CHECK(tail.generation() == rotations);
}

TEST_CASE("tail_file: a stop request ends a read blocked on a missing file or at the end of a file") {
  temp_dir dir;
  const auto path = dir / "app.log";
  // An hour between polls: only the stop request, not the next poll, can end these reads.
  const sluice::tail_options slow{.poll = std::chrono::hours(1)};
  char buf[16];

  sluice::tail_file missing(path, slow);
  CHECK(result_after_stop([&](const std::stop_token& stop) { return missing.read_some(buf, sizeof buf, stop); }) == 0);

  append(path, "abc");
  sluice::tail_file at_end(path, slow);
  CHECK(at_end.read_some(buf, sizeof buf, std::stop_token{}) == 3);
  CHECK(result_after_stop([&](const std::stop_token& stop) { return at_end.read_some(buf, sizeof buf, stop); }) == 0);
  CHECK(at_end.position() == 3);

  std::stop_source already;
  already.request_stop();
  append(path, "def");
  CHECK_MESSAGE(at_end.read_some(buf, sizeof buf, already.get_token()) == 0, "stop wins over available bytes");
  CHECK(at_end.read_some(buf, sizeof buf, std::stop_token{}) == 3);
}

TEST_CASE("tail_file: a path that cannot be followed is a bad_input_error naming it") {
  temp_dir dir;
  CHECK_THROWS_AS(sluice::tail_file(dir.path.string()), sluice::bad_input_error);
  try {
    sluice::tail_file t(dir.path.string());
  } catch (const sluice::bad_input_error& e) {
    CHECK(std::string(e.what()) == dir.path.string() + ": cannot follow: " + std::strerror(EISDIR));
  }

  const auto fifo = dir / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  CHECK_THROWS_WITH_AS(sluice::tail_file{fifo}, doctest::Contains("not a regular file"), sluice::bad_input_error);

  // The path turning into a directory after a rotation is an error too, raised by the read.
  const auto path = dir / "app.log";
  append(path, "x");
  sluice::tail_file tail(path, {.poll = 1ms});
  CHECK(read_bytes(tail, 1) == "x");
  REQUIRE(::rename(path.c_str(), (dir / "app.log.1").c_str()) == 0);
  std::filesystem::create_directory(path);
  char buf[4];
  CHECK_THROWS_WITH_AS(tail.read_some(buf, sizeof buf, std::stop_token{}), doctest::Contains(path.c_str()),
                       sluice::bad_input_error);

  if (::geteuid() != 0) {  // root reads anything
    const auto locked = dir / "locked.log";
    append(locked, "secret");
    REQUIRE(::chmod(locked.c_str(), 0) == 0);
    CHECK_THROWS_WITH_AS(sluice::tail_file{locked}, doctest::Contains(std::strerror(EACCES)), sluice::bad_input_error);
  }
}

TEST_CASE("tail_file: a moved reader carries on where it was") {
  temp_dir dir;
  const auto path = dir / "app.log";
  append(path, "abcdef");
  sluice::tail_file first(path, {.poll = 1ms});
  char buf[3];
  REQUIRE(first.read_some(buf, sizeof buf, std::stop_token{}) == 3);
  sluice::tail_file second = std::move(first);
  CHECK(read_bytes(second, 3) == "def");
  CHECK(second.position() == 6);
}

namespace {
/// Both ends of a pipe, closed on scope exit unless closed before.
struct pipe_ends {
  int read = -1;
  int write = -1;
  pipe_ends() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    read = fds[0];
    write = fds[1];
  }
  pipe_ends(const pipe_ends&) = delete;
  pipe_ends& operator=(const pipe_ends&) = delete;
  void close_write() {
    if (write >= 0) {
      ::close(write);
      write = -1;
    }
  }
  ~pipe_ends() {
    close_write();
    ::close(read);
  }
};
}  // namespace

TEST_CASE("fd_reader: a pipe written in random pieces by another thread is read completely, then its end") {
  pipe_ends pipe;
  std::mt19937 rng(11);
  const std::string content = random_bytes(rng, 1'000'000);  // many times the pipe's buffer
  std::jthread writer([&] {
    std::mt19937 wrng(5);
    for (std::size_t done = 0; done < content.size();) {
      const std::size_t piece =
          std::min(content.size() - done, std::uniform_int_distribution<std::size_t>(1, 70'000)(wrng));
      write_all(pipe.write, content.substr(done, piece));
      done += piece;
    }
    pipe.close_write();
  });
  sluice::fd_reader in(pipe.read, "pipe");
  const std::string got = read_bytes(in, content.size() + 1, &rng);  // one more: reads on to the end
  writer.join();
  CHECK(mismatch(got, content) == "");
  CHECK(in.eof());
  CHECK(in.position() == content.size());
  CHECK(in.name() == "pipe");
}

TEST_CASE("fd_reader: at the end of the input read_some returns 0 and eof() is true, every time") {
  pipe_ends pipe;
  write_all(pipe.write, "last");
  pipe.close_write();
  sluice::fd_reader in(pipe.read);
  CHECK(in.name() == "stdin");
  char buf[16];
  CHECK(in.read_some(buf, sizeof buf, std::stop_token{}) == 4);
  CHECK_FALSE(in.eof());
  CHECK(in.read_some(buf, sizeof buf, std::stop_token{}) == 0);
  CHECK(in.eof());
  CHECK(in.read_some(buf, sizeof buf, std::stop_token{}) == 0);
  CHECK(in.position() == 4);
}

TEST_CASE("fd_reader: a stop request ends a read blocked on a silent pipe, which is not its end") {
  pipe_ends pipe;
  sluice::fd_reader in(pipe.read, "pipe");
  char buf[16];
  CHECK(result_after_stop([&](const std::stop_token& stop) { return in.read_some(buf, sizeof buf, stop); }) == 0);
  CHECK_FALSE(in.eof());
  write_all(pipe.write, "later");
  CHECK(in.read_some(buf, sizeof buf, std::stop_token{}) == 5);
  CHECK(in.position() == 5);
}

namespace {
void ignore_signal(int /*signal*/) {}
}  // namespace

TEST_CASE("fd_reader: signals interrupting a blocked read lose nothing") {
  struct sigaction quiet {};
  quiet.sa_handler = ignore_signal;
  sigemptyset(&quiet.sa_mask);
  quiet.sa_flags = 0;  // no SA_RESTART: interrupted calls fail with EINTR
  struct sigaction previous {};
  REQUIRE(::sigaction(SIGUSR1, &quiet, &previous) == 0);

  pipe_ends pipe;
  sluice::fd_reader in(pipe.read, "pipe");
  std::string got;
  std::jthread reader([&] { got = read_bytes(in, 100); });
  for (int i = 0; i < 20; ++i) {
    ::pthread_kill(reader.native_handle(), SIGUSR1);
    std::this_thread::sleep_for(2ms);
  }
  write_all(pipe.write, "through the signals");
  pipe.close_write();
  reader.join();
  ::sigaction(SIGUSR1, &previous, nullptr);
  CHECK(got == "through the signals");
  CHECK(in.eof());
}

TEST_CASE("fd_reader: a descriptor that is not open is a bad_input_error naming the input") {
  CHECK_THROWS_WITH_AS(sluice::fd_reader(-1, "events"), "events: not an open file descriptor", sluice::bad_input_error);
  constexpr int never_opened = 1'000'000;  // above any descriptor limit
  CHECK_THROWS_WITH_AS(sluice::fd_reader{never_opened}, "stdin: not an open file descriptor", sluice::bad_input_error);
}
