/* newline_floor: the "floor" for the sales benchmark.
 * mmap FILE, count '\n' with memchr, print the count.
 * Build: cc -O2 -o newline_floor newline_floor.c
 * Usage: newline_floor FILE */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
  }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) {
    perror(argv[1]);
    return 1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    perror("fstat");
    return 1;
  }
  unsigned long long count = 0;
  if (st.st_size > 0) {
    const char *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (base == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    madvise((void *)base, (size_t)st.st_size, MADV_SEQUENTIAL);
    const char *p = base, *end = base + st.st_size;
    while (p < end) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      if (!nl) break;
      ++count;
      p = nl + 1;
    }
    munmap((void *)base, (size_t)st.st_size);
  }
  close(fd);
  printf("%llu\n", count);
  return 0;
}
