// Checking Graphviz DOT text from tests: well-formed as far as a parser is concerned (braces,
// strings, edges between declared nodes), and rendered by `dot` where Graphviz is installed (the
// tests pass without it: Graphviz is a documentation tool here, not a build dependency).
#pragma once

#include <doctest/doctest.h>

#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "e2e_support.hpp"

namespace dot_check {

/// Checks what a Graphviz parser would reject in what to_dot writes: braces balanced outside
/// strings, strings closed, and every edge between declared nodes. Returns the first problem.
inline std::string dot_problem(const std::string& dot) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < dot.size(); ++i) {
    const char c = dot[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}' && --depth < 0) {
      return "a '}' closes nothing";
    }
  }
  if (in_string || depth != 0) {
    return in_string ? "an unterminated string" : "unbalanced braces";
  }
  std::set<std::string> nodes;
  std::vector<std::pair<std::string, std::string>> edges;
  std::istringstream in(dot);
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(' ');
    if (first == std::string::npos) {
      continue;
    }
    std::istringstream words(line.substr(first));
    std::string a;
    std::string arrow;
    std::string b;
    words >> a >> arrow >> b;
    if (b.ends_with(';')) {
      b.pop_back();
    }
    if (arrow == "->") {
      edges.emplace_back(a, b);
    } else if (arrow.starts_with("[") && a != "graph" && a != "node" && a != "edge") {
      nodes.insert(a);
    }
  }
  if (edges.empty()) {
    return "no edges";
  }
  for (const auto& [from, to] : edges) {
    if (!nodes.contains(from) || !nodes.contains(to)) {
      return "edge " + from + " -> " + to + " to an undeclared node";
    }
  }
  return "";
}

/// DOT text is well-formed, and renders with dot where Graphviz is installed.
inline void check_graph(const std::string& dot) {
  INFO(dot);
  CHECK(dot_problem(dot) == "");
  if (e2e::on_path("dot")) {
    const auto rendered = e2e::render_with_dot(dot);
    INFO(rendered.err);
    CHECK(rendered.status == 0);
    CHECK(rendered.out.find("<svg") != std::string::npos);
  }
}

}  // namespace dot_check
