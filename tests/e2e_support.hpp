// Running the example binaries from end-to-end tests: a private temp directory, a run with
// captured stdout/stderr and exit status, and small text helpers for reading their output.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace e2e {

/// A private directory for this process's files, removed at exit.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "sluice-e2e-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    path = pattern;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

inline std::filesystem::path tmp(const std::string& name) {
  static temp_dir dir;
  return dir.path / name;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (const char c : s) {
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return q + "'";
}

struct run_result {
  int status = -1;  // the exit status, or -1 if the process did not exit normally
  std::string out;
  std::string err;
};

/// Fresh paths in the temp directory for one run's stdout and stderr (shared by every run of
/// the process, whether through run() or a test's own fork/exec).
struct output_files {
  std::filesystem::path out;
  std::filesystem::path err;
};

inline output_files next_output_files() {
  static int calls = 0;
  const int n = ++calls;
  return {tmp("stdout-" + std::to_string(n)), tmp("stderr-" + std::to_string(n))};
}

/// The result of a finished run, from its wait status (as std::system or waitpid report it) and
/// the files its stdout and stderr went to, which are then removed.
inline run_result collect(int wait_status, const output_files& files) {
  run_result r;
  r.status = wait_status != -1 && WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
  r.out = read_file(files.out);
  r.err = read_file(files.err);
  std::filesystem::remove(files.out);
  std::filesystem::remove(files.err);
  return r;
}

inline run_result run(const std::string& binary, const std::vector<std::string>& args) {
  const output_files files = next_output_files();
  std::string cmd = shell_quote(binary);
  for (const auto& a : args) {
    cmd += ' ' + shell_quote(a);
  }
  cmd += " >" + shell_quote(files.out.string()) + " 2>" + shell_quote(files.err.string()) + " </dev/null";
  return collect(std::system(cmd.c_str()), files);
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    out.push_back(line);
  }
  return out;
}

inline std::vector<std::string> split(const std::string& line, char delimiter = ',') {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, delimiter)) {
    out.push_back(field);
  }
  if (!line.empty() && line.back() == delimiter) {
    out.emplace_back();
  }
  return out;
}

}  // namespace e2e
