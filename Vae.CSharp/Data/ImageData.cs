using TorchSharp;
using Vae.Core.Data;

namespace Vae.Data;

/// <summary>A set of equally sized grey-scale images with values in [0, 1], stored row-major image after image.</summary>
public sealed class ImageData
{
    internal ImageData(Images images) => Images = images;

    internal Images Images { get; }

    /// <summary>Creates image data from <paramref name="count"/> x <paramref name="height"/> x <paramref name="width"/> values (copied).</summary>
    public ImageData(int count, int height, int width, ReadOnlySpan<float> pixels)
    {
        if (count < 0 || height <= 0 || width <= 0)
            throw new ArgumentOutOfRangeException(nameof(count), $"count {count}, height {height}, width {width}: expected a non-negative count and positive sizes");
        if (pixels.Length != (long)count * height * width)
            throw new ArgumentException($"expected {count} x {height} x {width} = {(long)count * height * width} values, got {pixels.Length}", nameof(pixels));
        Images = new Images(count, height, width, pixels.ToArray());
    }

    /// <summary>Number of images.</summary>
    public int Count => Images.Count;
    /// <summary>Rows per image.</summary>
    public int Height => Images.Height;
    /// <summary>Columns per image.</summary>
    public int Width => Images.Width;
    /// <summary>Values per image (<see cref="Height"/> x <see cref="Width"/>).</summary>
    public int Dimension => Images.Dimension;

    /// <summary>All values, image after image, each row-major.</summary>
    public ReadOnlySpan<float> Pixels => Images.Pixels;

    /// <summary>The values of image <paramref name="index"/>, row-major.</summary>
    public ReadOnlySpan<float> Image(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), $"image {index} of {Count}");
        return Images.Pixels.AsSpan(index * Dimension, Dimension);
    }

    /// <summary>The first <paramref name="count"/> images (all of them when there are no more).</summary>
    public ImageData First(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return count >= Count ? this : new ImageData(count, Height, Width, Pixels[..(count * Dimension)]);
    }

    /// <summary>The seed of the test images' binary draw under dynamic binarisation: binarized MNIST's test set.</summary>
    public static readonly ulong TestBinarizationSeed = Vae.Core.Data.Mnist.BinarisedTestSeed;
    /// <summary>The seed of the training images' binary draw that evaluations under dynamic binarisation use.</summary>
    public static readonly ulong TrainEvaluationBinarizationSeed = 1;

    /// <summary>One binary draw of every value, x ~ Bernoulli(value), fixed by <paramref name="seed"/>: value i (image
    /// after image, row-major) becomes 1 when u_i &lt; value, with u_i = (s_i &gt;&gt; 11) / 2^53 and s_i the i-th output of
    /// SplitMix64 seeded with <paramref name="seed"/>. Binary images keep their values. Reproducible in any language.</summary>
    public ImageData BinarizedOnce(ulong seed) => new(Vae.Core.Data.ImagesModule.binarisedOnce(seed, Images));

    /// <summary>The images as a <see cref="Count"/> x <see cref="Dimension"/> array (a copy).</summary>
    public float[,] ToArray2D()
    {
        var result = new float[Count, Dimension];
        Buffer.BlockCopy(Images.Pixels, 0, result, 0, Images.Pixels.Length * sizeof(float));
        return result;
    }

    /// <summary>The images as a float32 tensor of shape [Count, Dimension] (a copy).</summary>
    public torch.Tensor ToTensor() => Vae.Core.Torch.ofArray2(Count, Dimension, Images.Pixels);

    /// <summary>The images as a tensor of <paramref name="dtype"/> (one copy; the float32 one is not kept beside it).</summary>
    internal torch.Tensor ToTensor(torch.ScalarType dtype)
    {
        var t = ToTensor();
        if (t.dtype == dtype) return t;
        using (t) return t.to_type(dtype);
    }
}
