using System.CommandLine;
using System.Globalization;
using Vae.Experiments;

namespace Vae.Cli;

/// <summary>The options of <c>vae reproduce</c> and <c>vae sweep</c> that choose where their runs train:
/// <c>--executor local|slurm</c>, <c>--jobs N</c> (local processes side by side), the Slurm settings, <c>--wait</c>,
/// <c>--status</c>, and <c>--task i</c>, with which each task's process trains run i.</summary>
sealed class ExecutorVerb
{
    public static readonly Option<string> Executor = Opt.Choice("--executor", "where the runs train: here (local) or as a Slurm job array", "local", "local", "slurm");
    public static readonly Option<long?> Jobs = Opt.OptionalInteger("--jobs", "local: train the runs as processes of their own, N side by side", 1, 1024);
    public static readonly Option<string> SlurmPartition = Opt.Text("--slurm-partition", "slurm: the partition (sbatch --partition)", "P");
    public static readonly Option<string> SlurmTime = Opt.Text("--slurm-time", "slurm: each task's time limit (sbatch --time); runs longer than it continue after a requeue", "T");
    public static readonly Option<long> SlurmCpusPerTask = Opt.Integer("--slurm-cpus-per-task", "slurm: processors per task, also its libtorch threads", 1, 1, 1024);
    public static readonly Option<string> SlurmMem = Opt.Text("--slurm-mem", "slurm: memory per task (sbatch --mem)", "M");
    public static readonly Option<string> SlurmSignal = new("--slurm-signal")
    {
        Description = "slurm: the warning signal before the time limit, on which a task checkpoints and requeues", HelpName = "SIG",
        DefaultValueFactory = _ => new SlurmOptions().Signal,
    };
    public static readonly Option<string> SlurmArg = Opt.Text("--slurm-arg", "slurm: further sbatch options, space-separated", "\"OPTIONS\"");
    public static readonly Option<bool> Wait = Opt.Flag("--wait", "slurm: wait until the collector job ends and show its table");
    public static readonly Option<bool> Status = Opt.Flag("--status", "show each run's samples, last bound and Slurm state, then exit");
    public static readonly Option<long?> TaskOption = new("--task")
    {
        Description = "train run i only (what an executor's task runs)", Hidden = true,
        CustomParser = r => long.TryParse(r.Tokens[0].Value, NumberStyles.None, CultureInfo.InvariantCulture, out long v) && v <= 100_000 ? v
            : Invalid(r, $"--task: expected an integer from 0 to 100000, got '{r.Tokens[0].Value}'"),
    };
    public static readonly Option<bool> Collect = new("--collect") { Description = "collect the runs into results.json (what the collector runs)", Hidden = true, Arity = ArgumentArity.Zero };

    /// <summary>Every executor option, added to each command that runs experiments.</summary>
    public static readonly Option[] All = [Executor, Jobs, SlurmPartition, SlurmTime, SlurmCpusPerTask, SlurmMem, SlurmSignal, SlurmArg, Wait, Status, TaskOption, Collect];
    static readonly Option[] SlurmOnly = [SlurmPartition, SlurmTime, SlurmCpusPerTask, SlurmMem, SlurmSignal, SlurmArg, Wait];

    static long? Invalid(System.CommandLine.Parsing.ArgumentResult r, string message) { r.AddError(message); return 0; }

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
        _executor = a.Get(Executor) == "slurm" ? ExperimentExecutor.Slurm : ExperimentExecutor.Local;
        Task = (int?)a.Get(TaskOption);
        if (_executor == ExperimentExecutor.Local)
            foreach (var option in SlurmOnly)
                if (a.Has(option)) throw new UsageException($"{verb[0]}: {option.Name} needs --executor slurm");
        if (_executor == ExperimentExecutor.Slurm && a.Has(Jobs)) throw new UsageException($"{verb[0]}: --jobs is for --executor local; Slurm runs as many tasks as it has room for");
        if ((_executor == ExperimentExecutor.Slurm || a.Has(Jobs)) && (Task is not null || a.Has(Collect)))
            throw new UsageException($"{verb[0]}: --task and --collect are what the executor's tasks run; they do not go with --executor slurm or --jobs");
    }

    /// <summary>Submits the experiment to Slurm or reports its status, returning the exit code; null when the runs
    /// train in this process.</summary>
    public int? Handles(IReadOnlyList<ExperimentTask> tasks, string directory, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        string verb = string.Join(" ", _verb);
        if (_a.Has(Status)) return ShowStatus(directory, stdout);
        if (Task >= tasks.Count) throw new UsageException($"{_verb[0]}: --task: expected 0 to {tasks.Count - 1} ({tasks.Count} runs), got {Task}");
        if (_executor == ExperimentExecutor.Local && !_a.Has(Jobs)) return null;
        var options = new SlurmOptions
        {
            Partition = _a.Get(SlurmPartition), Time = _a.Get(SlurmTime), Memory = _a.Get(SlurmMem),
            CpusPerTask = (int)_a.Get(SlurmCpusPerTask),
            Signal = _a.Get(SlurmSignal),
            ExtraArguments = _a.Get(SlurmArg)?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [],
        };
        // Each task runs this program with the same options, one run at a time: on the processors Slurm gives it, or
        // with --threads (default 1) beside the other local jobs.
        int threads = _executor == ExperimentExecutor.Slurm ? options.CpusPerTask : (int)(_a.Get(Common.Threads) ?? 1);
        string[] common = [.. Program(), .. _verb, .. _a.OptionsExcept([.. All, Common.Threads]), "--threads", threads.ToString(CultureInfo.InvariantCulture)];
        if (_executor == ExperimentExecutor.Local)
        {
            int jobs = (int)(_a.Get(Jobs) ?? 1);
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
        if (!_a.Has(Wait)) { stdout.WriteLine($"follow with: vae {verb} --out {directory} --status"); return VaeCommand.Ok; }
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

    static int ShowStatus(string directory, TextWriter stdout)
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
