using System.Globalization;
using Vae.Experiments;

namespace Vae.Cli;

/// <summary>The options of <c>vae reproduce</c> and <c>vae sweep</c> that choose where their runs train:
/// <c>--executor local|slurm</c>, <c>--jobs N</c> (local processes side by side), the Slurm settings, <c>--wait</c>,
/// <c>--status</c>, and <c>--task i</c>, with which each task's process trains run i.</summary>
sealed class ExecutorVerb
{
    /// <summary>Options taking a value.</summary>
    public static readonly string[] Valued = ["executor", "jobs", "slurm-partition", "slurm-time", "slurm-cpus-per-task", "slurm-mem", "slurm-signal", "slurm-arg"];
    /// <summary>Options without a value.</summary>
    public static readonly string[] Flags = ["wait", "status"];

    readonly Arguments _a;
    readonly string[] _verb;
    readonly ExperimentExecutor _executor;

    /// <summary>Run i of the experiment only (a task of a job array), or null for all of them.</summary>
    public int? Task { get; }

    /// <summary>The options of <paramref name="verb"/> (e.g. "reproduce", "figure2"), whose tasks run the same words.</summary>
    public ExecutorVerb(Arguments a, params string[] verb)
    {
        _a = a;
        _verb = verb;
        _executor = a.Choice("executor", "local", "local", "slurm") == "slurm" ? ExperimentExecutor.Slurm : ExperimentExecutor.Local;
        Task = a.Has("task") ? (int)a.Integer("task", 0, 0, 100_000) : null;
        if (_executor == ExperimentExecutor.Local)
            foreach (var name in Valued.Where(n => n.StartsWith("slurm-", StringComparison.Ordinal)).Append("wait"))
                if (a.Has(name)) throw new UsageException($"{verb[0]}: --{name} needs --executor slurm");
        if (_executor == ExperimentExecutor.Slurm && a.Has("jobs")) throw new UsageException($"{verb[0]}: --jobs is for --executor local; Slurm runs as many tasks as it has room for");
        if ((_executor == ExperimentExecutor.Slurm || a.Has("jobs")) && (Task is not null || a.Has("collect")))
            throw new UsageException($"{verb[0]}: --task and --collect are what the executor's tasks run; they do not go with --executor slurm or --jobs");
    }

    /// <summary>Submits the experiment to Slurm or reports its status, returning the exit code; null when the runs
    /// train in this process.</summary>
    public int? Handles(IReadOnlyList<ExperimentTask> tasks, string directory, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        string verb = string.Join(" ", _verb);
        if (_a.Has("status")) return Status(directory, stdout);
        if (Task >= tasks.Count) throw new UsageException($"{_verb[0]}: --task: expected 0 to {tasks.Count - 1} ({tasks.Count} runs), got {Task}");
        if (_executor == ExperimentExecutor.Local && !_a.Has("jobs")) return null;
        var options = new SlurmOptions
        {
            Partition = _a.String("slurm-partition"), Time = _a.String("slurm-time"), Memory = _a.String("slurm-mem"),
            CpusPerTask = (int)_a.Integer("slurm-cpus-per-task", 1, 1, 1024),
            Signal = _a.String("slurm-signal") ?? new SlurmOptions().Signal,
            ExtraArguments = _a.String("slurm-arg")?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [],
        };
        // Each task runs this program with the same options, one run at a time: on the processors Slurm gives it, or
        // with --threads (default 1) beside the other local jobs.
        int threads = _executor == ExperimentExecutor.Slurm ? options.CpusPerTask : (int)_a.Integer("threads", 1, 1, 1024);
        string[] common = [.. Program(), .. _verb, .. _a.OptionsExcept([.. Valued, .. Flags, "threads"]), "--threads", threads.ToString(CultureInfo.InvariantCulture)];
        if (_executor == ExperimentExecutor.Local)
        {
            int jobs = (int)_a.Integer("jobs", 1, 1, 1024);
            stdout.WriteLine($"{tasks.Count} runs, {jobs} at a time as processes of their own ({threads} threads each); logs in {Path.Combine(directory, "local", "logs")}");
            int code = LocalExecutor.RunAsync(directory, tasks, [.. common, "--task"], [.. common, "--collect"], jobs, threads, new Lines(stdout), cancel).GetAwaiter().GetResult();
            if (code == VaeCommand.Interrupted) { stdout.WriteLine("interrupted: every run keeps its checkpoint; run the same command again to continue"); return code; }
            string collected = Path.Combine(directory, "local", "logs", "collect.out");
            if (File.Exists(collected)) stdout.Write(File.ReadAllText(collected));
            return code;
        }
        var submission = SlurmExecutor.Submit(directory, tasks, [.. common, "--task"], [.. common, "--collect"], options);
        stdout.WriteLine($"submitted {tasks.Count} runs as array job {submission.ArrayJobId} and the collector as job {submission.CollectorJobId}; scripts in {Path.Combine(submission.Directory, "slurm")}");
        foreach (var t in tasks) stdout.WriteLine($"  task {t.Index}: {t.Name}");
        if (!_a.Has("wait")) { stdout.WriteLine($"follow with: vae {verb} --out {directory} --status"); return VaeCommand.Ok; }
        int? collector;
        try { collector = SlurmExecutor.WaitAsync(submission, cancellationToken: cancel).GetAwaiter().GetResult(); }
        catch (OperationCanceledException)
        {
            stderr.WriteLine($"stopped waiting; the jobs go on in Slurm (vae {verb} --out {directory} --status)");
            return VaeCommand.Interrupted;
        }
        string log = Path.Combine(submission.Directory, "slurm", "logs", "collect.out");
        if (File.Exists(log)) stdout.Write(File.ReadAllText(log));
        if (collector is null) stderr.WriteLine($"vae: the collector (job {submission.CollectorJobId}) left no exit code; see {log}");
        return collector ?? VaeCommand.Failure;
    }

    static int Status(string directory, TextWriter stdout)
    {
        var states = SlurmExecutor.Status(directory);
        stdout.WriteLine($"{"task",4} {"run",-16} {"samples",14} {"train",10} state");
        foreach (var s in states)
        {
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{s.Task.Index,4} {s.Task.Name,-16} {s.SamplesSeen,14:N0} {s.TrainBound,10:F2} {s.State}{(s.State == "FAILED" ? $" (exit {s.ExitCode})" : "")}"));
            foreach (var line in s.LogTail) stdout.WriteLine($"       | {line}");
        }
        return VaeCommand.Ok;
    }

    /// <summary>How this process was started: the apphost, or <c>dotnet</c> and the program's assembly.</summary>
    static string[] Program()
    {
        string host = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this program is unknown");
        return Path.GetFileNameWithoutExtension(host) == "dotnet" ? [host, typeof(VaeCommand).Assembly.Location] : [host];
    }
}
