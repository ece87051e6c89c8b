# Processes a test started (runners, producers, proxies, servers): whatever
# happens to the test (a failed assertion, die, BAIL_OUT), none of them
# outlives it. At exit each one still tracked is SIGKILLed by pid (a
# negative pid: the whole process group) and reaped.
package JobqChildren;

use strict;
use warnings;

use Exporter 'import';

our @EXPORT = qw(track_child untrack_child);

my %children;    # pid (or -pgid) => 1
my $owner = $$;  # a forked child that fails to exec must not clean up

sub track_child { $children{ $_[0] } = 1 }

# Returns true if it was tracked. Call it once a process is reaped: its pid
# may be reused.
sub untrack_child { delete $children{ $_[0] } }

END {
    return unless defined $owner && $$ == $owner;
    my $status = $?;
    for my $pid (keys %children) {
        next unless kill 0, $pid;
        kill 'KILL', $pid;
        waitpid(abs $pid, 0);
    }
    $? = $status;
}

1;
