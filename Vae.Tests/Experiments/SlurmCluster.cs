using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Vae.Tests.Experiments;

/// <summary>A real single-node Slurm cluster for the tests, started without systemd in a directory of its own: munged
/// on its own socket and key, then slurmctld and slurmd on free ports with a slurm.conf naming this host (job
/// credentials last 10 s instead of 120, which is also how long Slurm holds a requeued job back). Needs
/// Debian's slurm-wlm and munge (the CI script installs them) and root. Disposing stops the three daemons by the
/// process ids they recorded.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class SlurmCluster : IDisposable
{
    /// <summary>The cluster's configuration file: give it to Slurm's commands as SLURM_CONF.</summary>
    public string Configuration { get; }

    /// <summary>The environment a process needs to talk to this cluster.</summary>
    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string> { ["SLURM_CONF"] = Configuration };

    readonly string _dir;

    public SlurmCluster()
    {
        foreach (var program in new[] { "/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch", "/usr/sbin/mungekey" })
            if (!File.Exists(program))
                throw new InvalidOperationException($"{program} is missing: the Slurm tests need Debian's slurm-wlm and munge (apt-get install -y slurm-wlm munge)");
        _dir = TestEnvironment.NewTempDirectory();
        // munged insists that every directory above its socket is searchable by all and writable by its owner only.
        File.SetUnixFileMode(_dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead
                                   | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        foreach (var sub in new[] { "state", "spool", "log" }) Directory.CreateDirectory(Path.Combine(_dir, sub));
        string socket = Path.Combine(_dir, "munge.socket");
        Run("/usr/sbin/mungekey", "-c", "-k", Path.Combine(_dir, "munge.key"));
        Run("/usr/sbin/munged", $"--socket={socket}", $"--key-file={Path.Combine(_dir, "munge.key")}", $"--pid-file={Path.Combine(_dir, "munged.pid")}",
            $"--log-file={Path.Combine(_dir, "log", "munged.log")}", $"--seed-file={Path.Combine(_dir, "munged.seed")}");
        string host = System.Net.Dns.GetHostName().Split('.')[0];
        Configuration = Path.Combine(_dir, "slurm.conf");
        File.WriteAllText(Configuration, $"""
            ClusterName=vaetests
            SlurmctldHost={host}
            SlurmctldPort={FreePort()}
            SlurmdPort={FreePort()}
            AuthType=auth/munge
            CredType=cred/munge
            AuthInfo=socket={socket},cred_expire=10
            SlurmUser=root
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            SelectType=select/cons_tres
            SelectTypeParameters=CR_Core
            SchedulerType=sched/backfill
            MpiDefault=none
            ReturnToService=2
            JobAcctGatherType=jobacct_gather/none
            AccountingStorageType=accounting_storage/none
            StateSaveLocation={Path.Combine(_dir, "state")}
            SlurmdSpoolDir={Path.Combine(_dir, "spool")}
            SlurmctldPidFile={Path.Combine(_dir, "slurmctld.pid")}
            SlurmdPidFile={Path.Combine(_dir, "slurmd.pid")}
            SlurmctldLogFile={Path.Combine(_dir, "log", "slurmctld.log")}
            SlurmdLogFile={Path.Combine(_dir, "log", "slurmd.log")}
            NodeName={host} CPUs={System.Environment.ProcessorCount} State=UNKNOWN
            PartitionName=tests Nodes=ALL Default=YES MaxTime=INFINITE State=UP

            """);
        // Slurm's commands run by this process (the façade's squeue) and by its children find the cluster by SLURM_CONF.
        System.Environment.SetEnvironmentVariable("SLURM_CONF", Configuration);
        Run("/usr/sbin/slurmctld", "-f", Configuration);
        Run("/usr/sbin/slurmd", "-f", Configuration);
        var clock = Stopwatch.StartNew();
        while (!Command("sinfo", "--noheader", "--format", "%T").Output.Contains("idle", StringComparison.Ordinal))
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(60))
                throw new InvalidOperationException($"the test cluster's node did not become idle within 60 s; see {Path.Combine(_dir, "log")}");
            Thread.Sleep(500);
        }
    }

    /// <summary>Runs a Slurm command against this cluster.</summary>
    public (int Code, string Output, string Errors) Command(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["SLURM_CONF"] = Configuration;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        string errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output.Result, errors);
    }

    void Run(string program, params string[] args)
    {
        // Not redirected: the daemons fork and return, and their children would hold a pipe of ours open.
        using var process = Process.Start(new ProcessStartInfo(program, args))!;
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{program} {string.Join(" ", args)}: exit {process.ExitCode}; see {Path.Combine(_dir, "log")}");
    }

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        foreach (var pidFile in new[] { "slurmd.pid", "slurmctld.pid", "munged.pid" })
        {
            string path = Path.Combine(_dir, pidFile);
            if (!File.Exists(path) || !int.TryParse(File.ReadAllText(path).Trim(), out int pid)) continue;
            try
            {
                using var daemon = Process.GetProcessById(pid);
                daemon.Kill(); // the daemons keep nothing the tests need
                daemon.WaitForExit(10_000);
            }
            catch (ArgumentException) { } // already gone
        }
    }
}
