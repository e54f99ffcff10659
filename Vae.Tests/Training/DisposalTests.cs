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
