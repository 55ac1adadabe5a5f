// Checkpoints (DESIGN §10): an input partition's operator state and its source position, kept
// together so that restoring the state and seeking the source to the position counts every
// event exactly once. A checkpoint is a few named parts (bytes the state's codecs wrote, see
// sluice/core/codec.hpp) under a versioned, checksummed header that also names the flow that
// wrote it: a checkpoint of another flow, a newer format, or damaged bytes are refused with a
// message that says which, and never half-applied.
//
// A checkpoint_store keeps checkpoints by name (a stream input's name, "sales/3"). checkpoint_dir
// keeps one file per name in a local directory, replaced atomically: the new bytes go to a
// temporary file that is fsynced and renamed over the old one, then the directory is fsynced, so
// a crash leaves the old checkpoint or the new one, whole. (kafka_checkpoint_store, in
// sluice/io/kafka_checkpoints.hpp, keeps them in a compacted Kafka topic instead, for any machine.)
//
// File layout (integers little-endian):
//   header (40 bytes): "SLUICECKPT" | u8 format version (1) | 5 zero bytes | u64 flow fingerprint
//                      | u64 body bytes | u32 crc32c(body) | u32 crc32c(the 36 header bytes before it)
//   body:              varint part count | per part: varint name length, name, varint length, bytes
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include "sluice/core/codec.hpp"
#include "sluice/core/crc32c.hpp"
#include "sluice/core/detail/bytes.hpp"
#include "sluice/core/hash.hpp"
#include "sluice/io/posix_files.hpp"

namespace sluice {

/// A checkpoint that cannot be used: "checkpoint /d/p3.ckpt: crc mismatch in the body".
class checkpoint_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Named parts of state, written by one flow (its fingerprint).
struct checkpoint {
  std::uint64_t flow = 0;
  std::vector<std::pair<std::string, std::string>> parts;

  void add(std::string name, std::string bytes) { parts.emplace_back(std::move(name), std::move(bytes)); }
  /// The part named `name`; nullptr if there is none.
  [[nodiscard]] const std::string* find(std::string_view name) const {
    for (const auto& [n, bytes] : parts) {
      if (n == name) {
        return &bytes;
      }
    }
    return nullptr;
  }
};

/// A number that differs between flows of different structure (stages, key, window and monoid
/// types: the state's type names), so that a checkpoint is never restored into another flow.
/// `name` adds what the types cannot tell apart (a query's name). The same program built again
/// keeps it; a changed flow gets a new one, and its old checkpoints are refused.
template <class State>
std::uint64_t flow_fingerprint(std::string_view name = {}) {
#if defined(__cpp_rtti) || defined(__GXX_RTTI)
  const std::string_view type = typeid(State).name();
#else
  const std::string_view type = __PRETTY_FUNCTION__;
#endif
  return detail::mix64(hash_value(type) ^ detail::mix64(hash_value(name) + 1));
}

namespace detail {
inline constexpr std::string_view checkpoint_magic = "SLUICECKPT";
inline constexpr std::uint8_t checkpoint_version = 1;
inline constexpr std::size_t checkpoint_header_bytes = 40;
}  // namespace detail

/// The bytes of a checkpoint file.
inline std::string encode_checkpoint(const checkpoint& c) {
  std::string body;
  byte_writer w(body);
  w.put_varint(c.parts.size());
  for (const auto& [name, bytes] : c.parts) {
    encode(w, name);
    encode(w, bytes);
  }
  std::string out(detail::checkpoint_header_bytes, '\0');
  detail::checkpoint_magic.copy(out.data(), detail::checkpoint_magic.size());
  out[detail::checkpoint_magic.size()] = static_cast<char>(detail::checkpoint_version);
  detail::put_le<std::uint64_t>(out.data() + 16, c.flow);
  detail::put_le<std::uint64_t>(out.data() + 24, body.size());
  detail::put_le<std::uint32_t>(out.data() + 32, crc32c(body.data(), body.size()));
  detail::put_le<std::uint32_t>(out.data() + 36, crc32c(out.data(), 36));
  out += body;
  return out;
}

/// Reads a checkpoint file's bytes; `where` names it in errors. With `flow` set, a checkpoint
/// another flow wrote is refused too.
inline checkpoint decode_checkpoint(std::string_view bytes, const std::string& where,
                                    std::optional<std::uint64_t> flow = std::nullopt) {
  const auto fail = [&](const std::string& why) -> checkpoint_error {
    return checkpoint_error("checkpoint " + where + ": " + why);
  };
  if (bytes.size() < detail::checkpoint_header_bytes) {
    throw fail("torn header (" + std::to_string(bytes.size()) + " of " +
               std::to_string(detail::checkpoint_header_bytes) + " bytes)");
  }
  if (bytes.substr(0, detail::checkpoint_magic.size()) != detail::checkpoint_magic) {
    throw fail("not a sluice checkpoint (no SLUICECKPT header)");
  }
  if (detail::get_le<std::uint32_t>(bytes.data() + 36) != crc32c(bytes.data(), 36)) {
    throw fail("crc mismatch in the header");
  }
  const auto version = static_cast<std::uint8_t>(bytes[detail::checkpoint_magic.size()]);
  if (version > detail::checkpoint_version) {
    throw fail("format version " + std::to_string(version) + " is newer than this build reads (" +
               std::to_string(detail::checkpoint_version) + "): restore it with a newer sluice");
  }
  if (version == 0) {
    throw fail("format version 0 does not exist");
  }
  const std::uint64_t written_by = detail::get_le<std::uint64_t>(bytes.data() + 16);
  if (flow && written_by != *flow) {
    throw fail("written by another flow (fingerprint " + std::to_string(written_by) + ", this flow's is " +
               std::to_string(*flow) + "): the flow changed since, or the checkpoint is not this program's");
  }
  const std::uint64_t body_bytes = detail::get_le<std::uint64_t>(bytes.data() + 24);
  const std::string_view body = bytes.substr(detail::checkpoint_header_bytes);
  if (body.size() != body_bytes) {
    throw fail("the body is " + std::to_string(body.size()) + " bytes, the header says " + std::to_string(body_bytes));
  }
  if (detail::get_le<std::uint32_t>(bytes.data() + 32) != crc32c(body.data(), body.size())) {
    throw fail("crc mismatch in the body");
  }
  checkpoint c;
  c.flow = written_by;
  try {
    byte_reader r(body);
    const std::size_t n = r.get_count();
    for (std::size_t i = 0; i < n; ++i) {
      std::string name;
      std::string part;
      decode(r, name);
      decode(r, part);
      c.add(std::move(name), std::move(part));
    }
    if (r.left() != 0) {
      r.fail(std::to_string(r.left()) + " bytes after the last part");
    }
  } catch (const codec_error& e) {
    throw fail(std::string("body ") + e.what());
  }
  return c;
}

/// Where checkpoints are kept, by name: save() returns once the checkpoint is durable (a crash
/// after it cannot lose it), load() gives the latest one saved under the name, by any process
/// that shares the store, or nullopt. A damaged one, one of a newer format, or (with `flow`) one
/// another flow wrote is a checkpoint_error. A store is a handle to storage shared with other
/// threads and processes: saving through a const one is fine, as writing through a const file
/// descriptor is. Both are called from several threads at once.
class checkpoint_store {
 public:
  checkpoint_store() = default;
  checkpoint_store(const checkpoint_store&) = default;
  checkpoint_store& operator=(const checkpoint_store&) = default;
  virtual ~checkpoint_store() = default;

  virtual void save(std::string_view name, const checkpoint& c) const = 0;
  [[nodiscard]] virtual std::optional<checkpoint> load(std::string_view name,
                                                       std::optional<std::uint64_t> flow) const = 0;
  /// How errors name checkpoint `name` ("/d/sales_3.ckpt", "topic ckpt key g/sales/3").
  [[nodiscard]] virtual std::string where(std::string_view name) const = 0;
};

/// A file name for a checkpoint's name: what is not a letter, digit, '-', '_' or '.' becomes '_'
/// ("sales/3" -> "sales_3"), and one that would start with '.' (or is empty) gets a '_' before it.
inline std::string checkpoint_file_name(std::string_view name) {
  std::string f(name);
  for (char& c : f) {
    const bool plain =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    c = plain ? c : '_';
  }
  return f.empty() || f.front() == '.' ? "_" + f : f;
}

/// Checkpoints by name in a local directory (created if missing), each replaced atomically.
class checkpoint_dir final : public checkpoint_store {
 public:
  explicit checkpoint_dir(std::string dir) : dir_(std::move(dir)) {
    if (const std::string failed = detail::make_directories(dir_); !failed.empty()) {
      fail(failed, "create the directory");
    }
  }

  /// Replaces the checkpoint `name` with `c`, atomically and durably.
  void save(std::string_view name, const checkpoint& c) const override {
    const std::string path = path_of(name);
    // A temporary name of this save's own: two saves of one name at once (a partition handed off
    // by one worker while another has just taken it) each rename a whole file; the last wins.
    static std::atomic<std::uint64_t> saves{0};
    const std::string temp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(saves++);
    const std::string bytes = encode_checkpoint(c);
    {
      const detail::unique_fd f(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (!f.is_open()) {
        fail(temp, "create");
      }
      std::size_t done = 0;
      while (done < bytes.size()) {
        const ssize_t n = ::write(f.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) {
          continue;
        }
        if (n <= 0) {
          fail(temp, "write");
        }
        done += static_cast<std::size_t>(n);
      }
      if (::fsync(f.get()) != 0) {
        fail(temp, "sync");
      }
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
      fail(path, "rename the new checkpoint over");
    }
    if (!detail::sync_directory(dir_)) {
      fail(dir_, "sync the directory");
    }
  }

  /// The checkpoint `name`, or nullopt if there is none. With `flow`, one written by another
  /// flow is a checkpoint_error, as are damaged bytes and a newer format.
  [[nodiscard]] std::optional<checkpoint> load(std::string_view name,
                                               std::optional<std::uint64_t> flow = std::nullopt) const override {
    const std::string path = path_of(name);
    const detail::unique_fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!f.is_open()) {
      if (errno == ENOENT) {
        return std::nullopt;
      }
      fail(path, "open");
    }
    std::string bytes;
    char buf[1 << 16];
    while (true) {
      const ssize_t n = ::read(f.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        fail(path, "read");
      }
      if (n == 0) {
        break;
      }
      bytes.append(buf, static_cast<std::size_t>(n));
    }
    return decode_checkpoint(bytes, path, flow);
  }

  /// The file of checkpoint `name`, in the directory whatever the name ("sales/3": sales_3.ckpt).
  [[nodiscard]] std::string path_of(std::string_view name) const {
    return dir_ + (dir_.ends_with('/') ? "" : "/") + checkpoint_file_name(name) + ".ckpt";
  }
  [[nodiscard]] std::string where(std::string_view name) const override { return path_of(name); }
  [[nodiscard]] const std::string& dir() const { return dir_; }

 private:
  [[noreturn]] static void fail(const std::string& path, const char* action) {
    throw checkpoint_error("checkpoint " + path + ": cannot " + action + ": " + std::strerror(errno));
  }

  std::string dir_;
};

}  // namespace sluice
