/* bench-roundtrip.c: the machine's ceiling for sequential calls
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   bench-roundtrip [--client-cpu N] [--server-cpu M] [--seconds 1.5]
 *
 * Two processes joined by a unix socket pair pass one byte back and forth:
 * the client writes a byte and blocks until the echo comes back, as a
 * sequential RPC client does, with no protocol and no work on either side.
 * Its rate is the most round trips per second this machine can do between
 * two processes; a sequential client (bench-client) cannot beat it. On a
 * virtual machine where waking a process on another CPU is slow, that ceiling
 * can be lower than the sequential-client target itself, so run-bench-protocols.sh
 * prints it beside that row, measured in the same run.
 *
 * Each side is pinned to its CPU when one is given (the same CPU twice
 * measures the ceiling without cross-CPU wake-ups).
 *
 * Prints "RESULT round_trips=N seconds=S round_trips_per_s=R".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int
pin (int cpu)
{
  cpu_set_t set;

  if (cpu < 0)
    return 0;
  CPU_ZERO (&set);
  CPU_SET (cpu, &set);
  if (sched_setaffinity (0, sizeof set, &set) != 0)
    {
      fprintf (stderr, "bench-roundtrip: cannot pin to CPU %d: %s\n", cpu, strerror (errno));
      return -1;
    }
  return 0;
}

static double
now_s (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
usage (void)
{
  fprintf (stderr, "usage: bench-roundtrip [--client-cpu N] [--server-cpu M] [--seconds S]\n");
  exit (2);
}

int
main (int argc, char **argv)
{
  int client_cpu = -1, server_cpu = -1;
  double seconds = 1.5, start, elapsed;
  unsigned long round_trips = 0;
  int sv[2], status;
  pid_t child;
  char byte = 'x';

  for (int i = 1; i < argc; i++)
    {
      if (i + 1 >= argc)
        usage ();
      if (strcmp (argv[i], "--client-cpu") == 0)
        client_cpu = atoi (argv[++i]);
      else if (strcmp (argv[i], "--server-cpu") == 0)
        server_cpu = atoi (argv[++i]);
      else if (strcmp (argv[i], "--seconds") == 0)
        seconds = atof (argv[++i]);
      else
        usage ();
    }
  if (seconds <= 0)
    usage ();

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    {
      perror ("bench-roundtrip: socketpair");
      return 1;
    }

  child = fork ();
  if (child < 0)
    {
      perror ("bench-roundtrip: fork");
      return 1;
    }
  if (child == 0)
    {
      /* The echo side: answer every byte until the client hangs up. */
      char b;

      close (sv[0]);
      if (pin (server_cpu) != 0)
        _exit (1);
      while (read (sv[1], &b, 1) == 1)
        if (write (sv[1], &b, 1) != 1)
          _exit (1);
      _exit (0);
    }

  close (sv[1]);
  if (pin (client_cpu) != 0)
    {
      kill (child, SIGKILL);
      waitpid (child, NULL, 0);
      return 1;
    }

  start = now_s ();
  do
    {
      if (write (sv[0], &byte, 1) != 1 || read (sv[0], &byte, 1) != 1)
        {
          perror ("bench-roundtrip: round trip");
          kill (child, SIGKILL);
          waitpid (child, NULL, 0);
          return 1;
        }
      round_trips++;
      elapsed = now_s () - start;
    }
  while (elapsed < seconds);

  close (sv[0]);
  if (waitpid (child, &status, 0) != child || !WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      fprintf (stderr, "bench-roundtrip: the echo process failed\n");
      return 1;
    }

  printf ("RESULT round_trips=%lu seconds=%.3f round_trips_per_s=%.0f\n",
          round_trips, elapsed, (double) round_trips / elapsed);
  return 0;
}
