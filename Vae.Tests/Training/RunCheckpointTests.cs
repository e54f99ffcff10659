using System.Text.Json;
using Vae.Cli;
using Vae.Core;
using VaeTool = Vae.Tests.Cli.Vae;

namespace Vae.Tests.Training;

/// <summary>A run directory's checkpoint is a safetensors file holding the whole run state; runs checkpointed in the
/// original format still resume, and move to safetensors without changing their trajectory.</summary>
public class RunCheckpointTests
{
    static readonly string[] Tiny = ["--latent", "2", "--hidden", "20", "--eval-every", "1000", "--threads", "1"];

    static string Train(long samples, string? dir = null)
    {
        dir ??= Path.Combine(TestEnvironment.NewTempDirectory(), "run");
        var (code, _, err) = VaeTool.Run(["train", .. Tiny, "--samples", samples.ToString(System.Globalization.CultureInfo.InvariantCulture), "--out", dir]);
        Assert.True(code == VaeCommand.Ok, err);
        return dir;
    }

    static JsonDocument Header(byte[] file) => JsonDocument.Parse(file.AsMemory(8, (int)BitConverter.ToUInt64(file, 0)));

    [Fact]
    public void TheRunCheckpointIsSafetensorsWithTheRunStateAsTensorsAndEqualRunsWriteEqualFiles()
    {
        string a = Train(2000), b = Train(2000);
        byte[] file = File.ReadAllBytes(Path.Combine(a, "checkpoint.safetensors"));
        Assert.False(File.Exists(Path.Combine(a, Trainer.LegacyCheckpointFileName)));
        Assert.Equal(file, File.ReadAllBytes(Path.Combine(b, "checkpoint.safetensors")));
        using var header = Header(file);
        var root = header.RootElement;
        var metadata = root.GetProperty("__metadata__");
        Assert.Equal("training-run", metadata.GetProperty("kind").GetString());
        Assert.Equal("20", metadata.GetProperty("progress.step").GetString());
        Assert.Equal(64, metadata.GetProperty(Safetensors.HashKey).GetString()!.Length);
        // Parameters in nn.Linear's [out, in] layout, Adagrad's accumulators beside them, the generator's state as bytes.
        Assert.Equal("20,784", Shape(root, "encoder.hidden.weight"));
        Assert.Equal("20,784", Shape(root, "adagrad/encoder.hidden.weight"));
        Assert.Equal("F32", root.GetProperty("adagrad/decoder.logits.bias").GetProperty("dtype").GetString());
        Assert.Equal("U8", root.GetProperty("rng").GetProperty("dtype").GetString());
    }

    /// <summary>The run directory's owner reads back the schedule it recorded, which a resumed run keeps; a directory
    /// without a record has none.</summary>
    [Fact]
    public void ARunDirectoryGivesBackTheScheduleItsRunRecorded()
    {
        string dir = Train(3000);
        Assert.True(Trainer.IsRunDirectory(dir));
        Assert.Equal(new RunSchedule(3000, 1000), Trainer.RecordedSchedule(dir));
        string empty = TestEnvironment.NewTempDirectory();
        Assert.False(Trainer.IsRunDirectory(empty));
        Assert.Equal(new RunSchedule(null, null), Trainer.RecordedSchedule(empty));
    }

    /// <summary>The run's record reads back, typed, what training wrote into its directory; a bad field is named with its
    /// file and what was expected, and a directory without a record is refused by name.</summary>
    [Fact]
    public void ARunRecordReadsBackWhatTrainingWroteAndNamesABadField()
    {
        string dir = Train(3000);
        var record = RunRecord.Read(dir);
        Assert.Equal(TrainingAlgorithm.Aevb, record.Algorithm);
        Assert.Equal(new RunSchedule(3000, 1000), record.Schedule);
        Assert.Equal([1000L, 2000, 3000], record.Evaluations.Select(e => e.SamplesSeen));
        Assert.Equal(1, record.Threads.First);
        Assert.Empty(record.Threads.Changes);
        Assert.Equal(NativeTuning.KernelPath, record.Kernels);
        using (var trainer = Trainer.Resume(dir))
        {
            Assert.Equal(trainer.ModelOptions.LatentDimensions, record.Model.LatentDimensions);
            // The record names the gradient path the run took, where the trainer keeps the setting that chose it.
            var (t, r) = (trainer.Options, record.Options);
            Assert.Equal((t.Seed, t.StepSize, t.BatchSize, t.Estimator, t.WarmUp, t.SamplesPerDatapoint, t.Optimizer, GradientComputation.HandDerived),
                         (r.Seed, r.StepSize, r.BatchSize, r.Estimator, r.WarmUp, r.SamplesPerDatapoint, r.Optimizer, r.Gradient));
        }

        string options = Path.Combine(dir, "options.txt");
        File.WriteAllLines(options, File.ReadAllLines(options).Select(l => l.StartsWith("batch = ", StringComparison.Ordinal) ? "batch = many" : l)
            .Append("thread_changes = 2 from 1000 samples; two from 2000 samples"));
        var broken = RunRecord.Read(dir);
        var e = Assert.Throws<InvalidDataException>(() => broken.Options);
        Assert.Equal($"{options}: field 'batch' = 'many', expected an integer", e.Message);
        e = Assert.Throws<InvalidDataException>(() => broken.Threads);
        Assert.Contains("thread_changes part 'two from 2000 samples'", e.Message);
        string empty = TestEnvironment.NewTempDirectory();
        Assert.Contains(Path.Combine(empty, "options.txt"), Assert.Throws<InvalidDataException>(() => RunRecord.Read(empty)).Message);
    }

    static string Shape(JsonElement root, string tensor) =>
        string.Join(",", root.GetProperty(tensor).GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));

    [Fact]
    public void ARunCheckpointedInTheOriginalFormatResumesAndEndsAsAnUninterruptedRun()
    {
        string dir = Train(2000);
        string current = Path.Combine(dir, Trainer.CheckpointFileName), legacy = Path.Combine(dir, Trainer.LegacyCheckpointFileName);
        Checkpoint.save(legacy, Checkpoint.load(current));
        File.Delete(current);
        Assert.Equal(legacy, Trainer.CheckpointPath(dir));
        Assert.Equal("VAECKPT", System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(legacy), 0, 7));

        var (code, _, err) = VaeTool.Run("train", "--resume", dir, "--samples", "3000", "--threads", "1");
        Assert.True(code == VaeCommand.Ok, err);
        // The run moved to safetensors and the old file is gone, so the directory holds one state.
        Assert.False(File.Exists(legacy));
        Assert.Equal(File.ReadAllBytes(Path.Combine(Train(3000), Trainer.CheckpointFileName)), File.ReadAllBytes(current));
    }

    [Fact]
    public void ACorruptedRunCheckpointIsRefusedNamingTheFileAndTheHash()
    {
        string dir = Train(1000);
        string path = Path.Combine(dir, Trainer.CheckpointFileName);
        byte[] bytes = File.ReadAllBytes(path);
        bytes[^3] ^= 0x10; // a value of the last tensor, the generator's state
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<CheckpointException>(() => Trainer.Resume(dir));
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("SHA-256", e.Message);
        var (code, _, err) = VaeTool.Run("train", "--resume", dir, "--samples", "2000", "--threads", "1");
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.Contains("SHA-256", err);
    }

    static Dictionary<long, int> EventsPerStep(string runDirectory) =>
        Directory.GetFiles(Path.Combine(runDirectory, "tensorboard"))
            .SelectMany(f => TensorBoardLog.Records(File.ReadAllBytes(f)))
            .GroupBy(r => r.Step).ToDictionary(g => g.Key, g => g.Count());

    [Fact]
    public void AResumedRunDropsTheTensorBoardEventsOfALostSegment()
    {
        string dir = Train(3000);
        string checkpoint = Path.Combine(dir, Trainer.CheckpointFileName);
        byte[] at3000 = File.ReadAllBytes(checkpoint);
        // A segment whose evaluations were logged but whose checkpoint was lost: train on, then put the old checkpoint back.
        Assert.Equal(VaeCommand.Ok, VaeTool.Run("train", "--resume", dir, "--samples", "5000", "--threads", "1").Code);
        File.WriteAllBytes(checkpoint, at3000);
        var logged = EventsPerStep(dir);
        Assert.Equal(logged[3000], logged[5000]); // the lost segment's evaluations are in the event files

        var (code, _, err) = VaeTool.Run("train", "--resume", dir, "--samples", "5000", "--threads", "1");
        Assert.True(code == VaeCommand.Ok, err);
        // Each evaluation's events once: the lost segment's are gone, the resumed run's stand alone; as a straight run's.
        var resumed = EventsPerStep(dir);
        var straight = EventsPerStep(Train(5000));
        Assert.Equal(straight.Where(kv => kv.Key > 0).OrderBy(kv => kv.Key), resumed.Where(kv => kv.Key > 0).OrderBy(kv => kv.Key));
    }
}
