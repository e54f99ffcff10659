using System.Globalization;

namespace Vae.Experiments;

/// <summary>A test hook of <c>vae train</c> and of experiment tasks: with <c>VAE_HOLD_AFTER_EVALUATION=FILE</c> a run
/// writes FILE (its samples) at its first evaluation after a checkpoint exists and holds there until cancelled, so that
/// a test signals a run in a known state (a checkpoint on disk, the run directory locked), not after a guess at the
/// machine's speed. A run started again finds FILE and does not hold.</summary>
public static class EvaluationHold
{
    /// <summary>The environment variable naming the file.</summary>
    public const string Variable = "VAE_HOLD_AFTER_EVALUATION";

    /// <summary>An evaluation callback for the run in <paramref name="runDirectory"/> that holds as described until
    /// <paramref name="cancellationToken"/> is cancelled; null when the variable is unset.</summary>
    public static Action<EvaluationResult>? For(string runDirectory, CancellationToken cancellationToken)
    {
        string? hold = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrEmpty(hold)) return null;
        return r =>
        {
            if (File.Exists(hold) || !File.Exists(Trainer.CheckpointPath(runDirectory))) return;
            Vae.Core.Files.writeAtomically(hold, System.Text.Encoding.UTF8.GetBytes(r.SamplesSeen.ToString(CultureInfo.InvariantCulture)));
            cancellationToken.WaitHandle.WaitOne();
        };
    }
}
