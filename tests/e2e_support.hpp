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

inline run_result run(const std::string& binary, const std::vector<std::string>& args) {
  static int calls = 0;
  const int n = ++calls;
  const std::filesystem::path out = tmp("stdout-" + std::to_string(n));
  const std::filesystem::path err = tmp("stderr-" + std::to_string(n));
  std::string cmd = shell_quote(binary);
  for (const auto& a : args) {
    cmd += ' ' + shell_quote(a);
  }
  cmd += " >" + shell_quote(out.string()) + " 2>" + shell_quote(err.string()) + " </dev/null";
  const int raw = std::system(cmd.c_str());
  run_result r;
  r.status = raw != -1 && WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
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
