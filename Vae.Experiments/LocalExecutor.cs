using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Vae.Experiments;

/// <summary>Runs an experiment's tasks on this machine as processes of their own, at most a given number side by side,
/// then its collector: the same commands a Slurm job array runs (<see cref="SlurmExecutor"/>), without Slurm. Each
/// process's output goes to <c>{directory}/local/logs/</c>.</summary>
public static class LocalExecutor
{
    /// <summary>Runs task i as <paramref name="taskCommand"/> followed by i, for every task, <paramref name="jobs"/> at a
    /// time, each with <paramref name="threadsPerTask"/> libtorch threads; then <paramref name="collectCommand"/>.
    /// Returns the collector's exit code. Cancellation sends TERM to the running tasks (each finishes its step and
    /// writes its checkpoint), starts no more, skips the collector and returns <see cref="SlurmExecutor.InterruptedExitCode"/>.</summary>
    public static async Task<int> RunAsync(string directory, IReadOnlyList<ExperimentTask> tasks, IReadOnlyList<string> taskCommand,
                                           IReadOnlyList<string> collectCommand, int jobs, int threadsPerTask = 1, IProgress<string>? log = null,
                                           CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        ArgumentOutOfRangeException.ThrowIfLessThan(jobs, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(threadsPerTask, 1);
        string logs = Path.Combine(Path.GetFullPath(directory), "local", "logs");
        Directory.CreateDirectory(logs);
        using var slots = new SemaphoreSlim(jobs);
        async Task<int> RunTask(ExperimentTask task)
        {
            await slots.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                if (cancellationToken.IsCancellationRequested) return SlurmExecutor.InterruptedExitCode;
                log?.Report($"task {task.Index} ({task.Name}): started");
                int code = await Run([.. taskCommand, task.Index.ToString(CultureInfo.InvariantCulture)], threadsPerTask,
                                     Path.Combine(logs, $"task-{task.Index}.out"), append: true, cancellationToken).ConfigureAwait(false);
                log?.Report($"task {task.Index} ({task.Name}): exit {code}");
                return code;
            }
            finally { slots.Release(); }
        }
        var codes = await Task.WhenAll(tasks.Select(RunTask)).ConfigureAwait(false);
        if (cancellationToken.IsCancellationRequested || codes.Contains(SlurmExecutor.InterruptedExitCode)) return SlurmExecutor.InterruptedExitCode;
        return await Run(collectCommand, 1, Path.Combine(logs, "collect.out"), append: false, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Runs a command with its output written (or appended) to <paramref name="logPath"/>; on cancellation
    /// sends it TERM and waits for it to end.</summary>
    static async Task<int> Run(IReadOnlyList<string> command, int threads, string logPath, bool append, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in command.Skip(1)) start.ArgumentList.Add(a);
        start.Environment["OMP_NUM_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
        start.Environment["MKL_NUM_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{command[0]}: could not be started");
        await using var writer = new StreamWriter(logPath, append) { AutoFlush = true };
        var gate = new object();
        void Copy(string? line) { if (line is not null) lock (gate) writer.WriteLine(line); }
        process.OutputDataReceived += (_, e) => Copy(e.Data);
        process.ErrorDataReceived += (_, e) => Copy(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using (cancellationToken.Register(() => { try { _ = Kill(process.Id, SigTerm); } catch (InvalidOperationException) { } }))
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        return process.ExitCode;
    }

    const int SigTerm = 15;

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code in this assembly for one call
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int Kill(int pid, int signal);
#pragma warning restore SYSLIB1054
}
