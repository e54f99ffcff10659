using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Vae.Experiments;

/// <summary>Where an experiment's runs train: in this process, one after another, or as the tasks of a Slurm job array.</summary>
public enum ExperimentExecutor
{
    /// <summary>In this process, one run after another.</summary>
    Local,
    /// <summary>One Slurm array task per run, and a dependent job that collects them (<see cref="SlurmExecutor"/>).</summary>
    Slurm,
}

/// <summary>What a Slurm submission asks for. The run directory must be on a file system every node sees.</summary>
public sealed record SlurmOptions
{
    /// <summary>The partition (<c>--partition</c>); the cluster's default when null.</summary>
    public string? Partition { get; init; }
    /// <summary>Each task's time limit (<c>--time</c>, e.g. "04:00:00"); the partition's when null. A task that reaches it
    /// is warned (<see cref="Signal"/>), checkpoints and is requeued, so a limit shorter than a run only splits it.</summary>
    public string? Time { get; init; }
    /// <summary>Processors per task (<c>--cpus-per-task</c>), also the task's libtorch threads.</summary>
    public int CpusPerTask { get; init; } = 1;
    /// <summary>Memory per task (<c>--mem</c>, e.g. "4G"); the partition's default when null.</summary>
    public string? Memory { get; init; }
    /// <summary>The warning signal asked of Slurm before the time limit (<c>--signal</c>): TERM to the batch shell 120 s
    /// ahead, which passes it to vae; vae finishes its step, writes its checkpoint and the task requeues itself.</summary>
    public string Signal { get; init; } = "B:TERM@120";
    /// <summary>Further sbatch options, passed through verbatim to both submissions (e.g. "--account=lab").</summary>
    public IReadOnlyList<string> ExtraArguments { get; init; } = [];
}

/// <summary>A submitted experiment: the array job training its runs and the job collecting them.</summary>
/// <param name="ArrayJobId">The job id of the array (task i trains run i).</param>
/// <param name="CollectorJobId">The job id of the collector, which starts when every task has ended.</param>
/// <param name="Tasks">The runs, in task order.</param>
/// <param name="Directory">The experiment directory (absolute).</param>
public sealed record SlurmSubmission(string ArrayJobId, string CollectorJobId, IReadOnlyList<ExperimentTask> Tasks, string Directory)
{
    /// <summary>The file of the experiment directory that records the submission.</summary>
    public const string FileName = "slurm/submission.json";

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>The submission recorded in <paramref name="directory"/>, or null when there is none.</summary>
    public static SlurmSubmission? Read(string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize<SlurmSubmission>(File.ReadAllText(path), Json) ?? throw new JsonException("null"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: expected a Slurm submission record ({e.Message})", e); }
    }

    internal void Save() => Vae.Core.Files.writeAtomically(Path.Combine(Directory, FileName), Encoding.UTF8.GetBytes(JsonSerializer.Serialize(this, Json)));
}

/// <summary>One run's state as <see cref="SlurmExecutor.Status"/> reports it.</summary>
/// <param name="Task">The run.</param>
/// <param name="SamplesSeen">Training samples its metrics reach (0 before its first evaluation).</param>
/// <param name="TrainBound">Its last training bound, or NaN.</param>
/// <param name="State">Slurm's state while the task is queued or running (PENDING, RUNNING, ...); after it ended,
/// COMPLETED, FAILED or INTERRUPTED by its recorded exit code; UNKNOWN when neither says.</param>
/// <param name="ExitCode">The task's last recorded exit code, or null.</param>
/// <param name="LogTail">The last lines of the task's log when it failed, else empty.</param>
public sealed record SlurmTaskStatus(ExperimentTask Task, long SamplesSeen, double TrainBound, string State, int? ExitCode, IReadOnlyList<string> LogTail);

/// <summary>Failure of a Slurm command (sbatch, squeue), with its message.</summary>
public sealed class SlurmException(string message) : Exception(message);

/// <summary>Runs an experiment as a Slurm job array: one task per run, each training its run directory and resuming
/// from its checkpoint, and a dependent job (<c>afterany</c>) that collects the runs into results.json and the figure.
/// Tasks ask for a warning signal before their time limit and are requeued after checkpointing, so a preempted or
/// time-limited run continues where it stopped and ends with the parameters of an uninterrupted one.</summary>
public static class SlurmExecutor
{
    /// <summary>The exit code with which a task's program reports that it stopped on a signal after checkpointing
    /// (then the task requeues itself).</summary>
    public const int InterruptedExitCode = 130;

    /// <summary>Writes the array and collector scripts into <c>{directory}/slurm/</c> and submits them. Task i runs
    /// <paramref name="taskCommand"/> followed by its index; the collector runs <paramref name="collectCommand"/>. Both
    /// run in <paramref name="workingDirectory"/> with the submitting environment.</summary>
    public static SlurmSubmission Submit(string directory, IReadOnlyList<ExperimentTask> tasks, IReadOnlyList<string> taskCommand,
                                         IReadOnlyList<string> collectCommand, SlurmOptions options, string? workingDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        ArgumentNullException.ThrowIfNull(options);
        if (tasks.Count == 0) throw new ArgumentException("tasks: expected at least one run", nameof(tasks));
        if (options.CpusPerTask < 1) throw new ArgumentOutOfRangeException(nameof(options), options.CpusPerTask, "cpus per task: expected at least 1");
        directory = Path.GetFullPath(directory);
        workingDirectory = Path.GetFullPath(workingDirectory ?? Environment.CurrentDirectory);
        string slurm = Path.Combine(directory, "slurm");
        Directory.CreateDirectory(Path.Combine(slurm, "logs"));
        // Exit records of an earlier submission would describe tasks that have not run yet.
        if (Directory.Exists(Path.Combine(slurm, "exit"))) Directory.Delete(Path.Combine(slurm, "exit"), recursive: true);
        Directory.CreateDirectory(Path.Combine(slurm, "exit"));

        string arrayScript = Path.Combine(slurm, "tasks.sbatch");
        Vae.Core.Files.writeAtomically(arrayScript, Encoding.UTF8.GetBytes(TaskScript(directory, tasks, taskCommand, options, workingDirectory)));
        string collectScript = Path.Combine(slurm, "collect.sbatch");
        Vae.Core.Files.writeAtomically(collectScript, Encoding.UTF8.GetBytes(CollectScript(directory, collectCommand, options, workingDirectory)));

        string arrayJob = Sbatch([.. options.ExtraArguments, arrayScript]);
        string collector;
        try { collector = Sbatch([.. options.ExtraArguments, $"--dependency=afterany:{arrayJob}", collectScript]); }
        catch (SlurmException) { TryRun("scancel", [arrayJob]); throw; }
        var submission = new SlurmSubmission(arrayJob, collector, tasks, directory);
        submission.Save();
        return submission;
    }

    /// <summary>Waits until the collector job of <paramref name="submission"/> has ended and returns its exit code
    /// (null when it left none, e.g. cancelled before it started), polling the queue every <paramref name="poll"/>.</summary>
    public static async Task<int?> WaitAsync(SlurmSubmission submission, TimeSpan? poll = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(submission);
        while (QueueStates(submission.CollectorJobId).Count > 0)
            await Task.Delay(poll ?? TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
        return ExitCode(submission.Directory, "collect");
    }

    /// <summary>Every run of the submission recorded in <paramref name="directory"/>: the samples its metrics reach, its
    /// last training bound and its task's state, with the end of its log when it failed.</summary>
    public static IReadOnlyList<SlurmTaskStatus> Status(string directory, int logLines = 5)
    {
        var submission = SlurmSubmission.Read(directory) ?? throw new InvalidDataException($"{Path.Combine(directory, SlurmSubmission.FileName)}: no Slurm submission recorded (submit with --executor slurm)");
        var queued = QueueStates(submission.ArrayJobId);
        var states = new List<SlurmTaskStatus>();
        foreach (var task in submission.Tasks)
        {
            var series = Vae.RunRecord.ReadEvaluations(Path.Combine(submission.Directory, task.Name, "metrics.csv"));
            int? code = ExitCode(submission.Directory, $"task-{task.Index}");
            string state = queued.TryGetValue(task.Index.ToString(CultureInfo.InvariantCulture), out var q) ? q
                : code switch { 0 => "COMPLETED", InterruptedExitCode => "INTERRUPTED", null => "UNKNOWN", _ => "FAILED" };
            IReadOnlyList<string> tail = state == "FAILED" ? LogTail(Path.Combine(submission.Directory, "slurm", "logs", $"task-{task.Index}.out"), logLines) : [];
            states.Add(new SlurmTaskStatus(task, series.LastOrDefault()?.SamplesSeen ?? 0, series.LastOrDefault()?.TrainBound ?? double.NaN, state, code, tail));
        }
        return states;
    }

    /// <summary>The array script: each task runs its program in the background so that the batch shell can pass Slurm's
    /// warning signal on, records the exit code, and requeues itself when the program stopped on the signal.</summary>
    static string TaskScript(string directory, IReadOnlyList<ExperimentTask> tasks, IReadOnlyList<string> command, SlurmOptions o, string workingDirectory)
    {
        string slurm = Path.Combine(directory, "slurm");
        var s = new StringBuilder();
        s.Append("#!/bin/bash\n");
        s.Append("# Written by vae: task i trains run i below into its directory, continuing from its checkpoint. On Slurm's\n");
        s.Append("# warning signal (time limit, preemption) vae finishes its step, checkpoints, and the task requeues itself.\n");
        s.Append(CultureInfo.InvariantCulture, $"#SBATCH --job-name=vae-{Path.GetFileName(directory)}\n");
        s.Append(CultureInfo.InvariantCulture, $"#SBATCH --array=0-{tasks.Count - 1}\n");
        Header(s, o, workingDirectory, Path.Combine(slurm, "logs", "task-%a.out"));
        s.Append("#SBATCH --requeue\n#SBATCH --open-mode=append\n");
        s.Append(CultureInfo.InvariantCulture, $"#SBATCH --signal={o.Signal}\n");
        foreach (var t in tasks) s.Append(CultureInfo.InvariantCulture, $"# task {t.Index}: {t.Name}\n");
        s.Append(Threads);
        s.Append("task=$SLURM_ARRAY_TASK_ID\n");
        s.Append("echo \"vae task $task: job ${SLURM_JOB_ID}, restart ${SLURM_RESTART_COUNT:-0}, on $(hostname) at $(date -u +%FT%TZ)\"\n");
        s.Append(Quote(command)).Append(" \"$task\" &\n");
        s.Append("child=$!\n");
        s.Append("trap 'kill -TERM $child 2>/dev/null' TERM\n");
        s.Append("wait $child; code=$?\n");
        s.Append("# wait returns early when the trap ran: wait again for vae's own exit code.\n");
        s.Append("while kill -0 $child 2>/dev/null; do wait $child; code=$?; done\n");
        s.Append(CultureInfo.InvariantCulture, $"echo $code > {Quote(Path.Combine(slurm, "exit"))}/task-$task.tmp && mv {Quote(Path.Combine(slurm, "exit"))}/task-$task.tmp {Quote(Path.Combine(slurm, "exit"))}/task-$task\n");
        s.Append("echo \"vae task $task: exit $code at $(date -u +%FT%TZ)\"\n");
        s.Append(CultureInfo.InvariantCulture, $"if [ $code -eq {InterruptedExitCode} ]; then scontrol requeue \"${{SLURM_ARRAY_JOB_ID}}_$task\"; fi\n");
        s.Append("exit $code\n");
        return s.ToString();
    }

    static string CollectScript(string directory, IReadOnlyList<string> command, SlurmOptions o, string workingDirectory)
    {
        string exit = Path.Combine(directory, "slurm", "exit");
        var s = new StringBuilder();
        s.Append("#!/bin/bash\n");
        s.Append("# Written by vae: after every task of the array has ended, collects the runs into results.json and the figure.\n");
        s.Append(CultureInfo.InvariantCulture, $"#SBATCH --job-name=vae-{Path.GetFileName(directory)}-collect\n");
        Header(s, o with { CpusPerTask = 1 }, workingDirectory, Path.Combine(directory, "slurm", "logs", "collect.out"));
        s.Append("#SBATCH --no-requeue\n");
        s.Append(Threads);
        s.Append(Quote(command)).Append('\n');
        s.Append("code=$?\n");
        s.Append(CultureInfo.InvariantCulture, $"echo $code > {Quote(exit)}/collect.tmp && mv {Quote(exit)}/collect.tmp {Quote(exit)}/collect\n");
        s.Append("exit $code\n");
        return s.ToString();
    }

    static void Header(StringBuilder s, SlurmOptions o, string workingDirectory, string output)
    {
        s.Append(CultureInfo.InvariantCulture, $"#SBATCH --cpus-per-task={o.CpusPerTask}\n");
        s.Append(CultureInfo.InvariantCulture, $"#SBATCH --chdir={workingDirectory}\n");
        s.Append(CultureInfo.InvariantCulture, $"#SBATCH --output={output}\n");
        if (o.Partition is { } p) s.Append(CultureInfo.InvariantCulture, $"#SBATCH --partition={p}\n");
        if (o.Time is { } t) s.Append(CultureInfo.InvariantCulture, $"#SBATCH --time={t}\n");
        if (o.Memory is { } m) s.Append(CultureInfo.InvariantCulture, $"#SBATCH --mem={m}\n");
    }

    /// <summary>The first command (sbatch reads #SBATCH lines only before it): libtorch uses the task's processors and
    /// no more, as two threads per core collapse throughput.</summary>
    const string Threads = "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1} MKL_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}\n";

    /// <summary>Words quoted for bash: each in single quotes, a single quote as '\''.</summary>
    static string Quote(IEnumerable<string> words) => string.Join(" ", words.Select(Quote));

    static string Quote(string word) => "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>Submits a script; returns its job id.</summary>
    static string Sbatch(IReadOnlyList<string> arguments)
    {
        var (code, stdout, stderr) = Run("sbatch", ["--parsable", .. arguments]);
        if (code != 0) throw new SlurmException($"sbatch {string.Join(" ", arguments)}: {FirstLine(stderr)} (exit {code})");
        string id = stdout.Trim().Split(';')[0];
        return id.Length > 0 && id.All(char.IsAsciiDigit) ? id : throw new SlurmException($"sbatch: expected a job id, got '{stdout.Trim()}'");
    }

    /// <summary>The queue's state of each task of <paramref name="jobId"/> (by array index; the job's own id for a
    /// job that is not an array), empty once the job has left the queue.</summary>
    static Dictionary<string, string> QueueStates(string jobId)
    {
        var (code, stdout, stderr) = Run("squeue", ["--noheader", "--array", "--jobs", jobId, "--format", "%K|%T"]);
        // A job that ended long ago is unknown to squeue: it is no longer queued.
        if (code != 0 && stderr.Contains("Invalid job id", StringComparison.OrdinalIgnoreCase)) return [];
        if (code != 0) throw new SlurmException($"squeue --jobs {jobId}: {FirstLine(stderr)} (exit {code})");
        var states = new Dictionary<string, string>();
        foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            if (line.Split('|') is [var index, var state]) states[index == "N/A" ? jobId : index] = state;
        return states;
    }

    static int? ExitCode(string directory, string name)
    {
        string path = Path.Combine(directory, "slurm", "exit", name);
        return File.Exists(path) && int.TryParse(File.ReadAllText(path).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int code) ? code : null;
    }

    static IReadOnlyList<string> LogTail(string path, int lines) =>
        File.Exists(path) ? [.. File.ReadAllLines(path).Select(l => l.Split('\r')[^1]).Where(l => l.Length > 0).TakeLast(lines)] : [];

    static string FirstLine(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "no message";

    static void TryRun(string program, IReadOnlyList<string> arguments)
    {
        try { Run(program, arguments); } catch (SlurmException) { }
    }

    static (int Code, string Stdout, string Stderr) Run(string program, IReadOnlyList<string> arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        Process process;
        try { process = Process.Start(start) ?? throw new SlurmException($"{program}: could not be started"); }
        catch (System.ComponentModel.Win32Exception e) { throw new SlurmException($"{program}: not found ({e.Message}); is Slurm installed and on PATH?"); }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            string stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode, stdout.Result, stderr);
        }
    }
}
