using Vae.Core;

namespace Vae.Tests.Training;

/// <summary>Models and trainers hold native tensors and free them on Dispose; a trainer's model is the trainer's.</summary>
public class DisposalTests
{
    [Fact]
    public void ADisposedModelFreesItsTensorsAndRefusesUse()
    {
        var model = VariationalAutoEncoder.Create(SmallMnist.Model, seed: 1);
        var tensors = VaeModelModule.tensors(model.Core);
        Assert.All(tensors, t => Assert.False(t.IsInvalid));
        model.Dispose();
        Assert.All(tensors, t => Assert.True(t.IsInvalid));
        Assert.Throws<ObjectDisposedException>(() => model.Sample(2));
        Assert.Throws<ObjectDisposedException>(() => model.Save(Path.Combine(TestEnvironment.NewTempDirectory(), "m.safetensors")));
        model.Dispose(); // twice is harmless
    }

    /// <summary>Live TorchSharp tensors in the process (tests run one at a time).</summary>
    static long Live() => TorchSharp.torch.Tensor.TotalCount;

    [Fact]
    public void CreatingLoadingResumingTrainingAndDisposingModelsLeavesNoTensorBehind()
    {
        string dir = TestEnvironment.NewTempDirectory();
        string file = Path.Combine(dir, "model.safetensors"), run = Path.Combine(dir, "run");
        var large = new VaeModelOptions { InputDimension = 784, HiddenUnits = 500, LatentDimensions = 20 };
        var small = new VaeModelOptions { InputDimension = 784, HiddenUnits = 20, LatentDimensions = 2 };
        var hundred = new Vae.Data.ImageData(100, 28, 28, SmallMnist.Train.Pixels[..(100 * 784)]);
        using (var model = VariationalAutoEncoder.Create(large, seed: 1)) model.Save(file);
        using (var trainer = new AevbTrainer(small, new AevbOptions { Seed = 2 }))
            trainer.Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 500, EvaluateEvery = 0, RunDirectory = run, TensorBoard = false });
        void Train(Trainer t, Vae.Data.ImageData data, long samples)
        {
            using (t) t.Fit(data, new TrainingOptions { TotalSamples = samples, EvaluateEvery = samples / 2, TestData = SmallMnist.Test, MarginalLikelihoodPoints = 3, TensorBoard = false });
        }
        var cycles = new (string Name, int Times, Action Act)[]
        {
            ("create", 200, () =>
            {
                var created = VariationalAutoEncoder.Create(large, seed: 3);
                var vector = created.Core.ParameterVector;
                created.Dispose();
                Assert.True(vector.IsInvalid, "the parameter vector the views share is freed");
            }),
            ("load", 100, () => VariationalAutoEncoder.Load(file).Dispose()),
            ("read settings", 100, () => Assert.Equal("20", VariationalAutoEncoder.ReadSettings(file)["model.latent"])),
            ("resume", 100, () => Trainer.Resume(run).Dispose()),
            ("train AEVB", 5, () => Train(new AevbTrainer(small, new AevbOptions { Seed = 2 }), SmallMnist.Train, 400)),
            ("train wake-sleep", 5, () => Train(new WakeSleepTrainer(small, new AevbOptions { Seed = 2 }), SmallMnist.Train, 400)),
            ("train Monte Carlo EM", 3, () => Train(new McemTrainer(small, new AevbOptions { Seed = 2 }), hundred, 1000)),
        };
        foreach (var c in cycles) c.Act(); // whatever is made once per process is made before counting
        // Garbage from before is finalized first, so that the count moves only with what the cycles leave behind.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        foreach (var c in cycles)
        {
            long before = Live();
            for (int i = 0; i < c.Times; i++) c.Act();
            Assert.True(Live() == before, $"{c.Name}: {Live() - before} tensors left alive by {c.Times} cycles");
        }
    }

    [Theory]
    [InlineData(TrainingAlgorithm.Aevb, "auto")]     // the hand-derived step and its workspace
    [InlineData(TrainingAlgorithm.Aevb, "autograd")]
    [InlineData(TrainingAlgorithm.MonteCarloEm, "auto")]
    public void ATrainerFreesItsRunAndItsModelIsItsOwn(TrainingAlgorithm algorithm, string gradient)
    {
        var options = new AevbOptions { Seed = 7, StepSize = 0.05, Gradient = gradient == "autograd" ? GradientComputation.Autograd : GradientComputation.Auto };
        Trainer trainer = algorithm == TrainingAlgorithm.Aevb ? new AevbTrainer(SmallMnist.Model, options) : new McemTrainer(SmallMnist.Model, options);
        var train = algorithm == TrainingAlgorithm.Aevb ? SmallMnist.Train : new Vae.Data.ImageData(100, 28, 28, SmallMnist.Train.Pixels[..(100 * 784)]);
        trainer.Fit(train, new TrainingOptions { TotalSamples = 2_000, EvaluateEvery = 0, MarginalLikelihoodPoints = 5 });
        // Disposing the trainer's model frees nothing: training goes on.
        var model = trainer.Model;
        var tensors = VaeModelModule.tensors(model.Core);
        model.Dispose();
        Assert.All(tensors, t => Assert.False(t.IsInvalid));
        trainer.Fit(train, new TrainingOptions { TotalSamples = 4_000, EvaluateEvery = 0, MarginalLikelihoodPoints = 5 });
        var current = VaeModelModule.tensors(trainer.Model.Core);

        trainer.Dispose();
        Assert.All(current, t => Assert.True(t.IsInvalid));
        Assert.Throws<ObjectDisposedException>(() => trainer.Fit(train, new TrainingOptions { TotalSamples = 6_000 }));
        Assert.Throws<ObjectDisposedException>(() => trainer.SamplesSeen);
        Assert.Throws<ObjectDisposedException>(() => trainer.Model);
        trainer.Dispose();
    }
}
